/*
 * board_riscv.c -- RV32 part of the example firmware (RV32I/E cores, machine mode): the entry
 * code at the start of flash (stack pointer, trap vector, then board_start) and semihosting
 * through the RISC-V sequence `slli x0, x0, 0x1f; ebreak; srai x0, x0, 7` (uncompressed, in one
 * 16-byte block), which QEMU's -semihosting answers like Arm's BKPT 0xAB.
 */
#include <stdint.h>

#include "board.h"

void board_trap(void);

/* Entry (first in flash, where the SiFive E reset vector jumps): sp, mtvec, then C. The CSR
   write is spelled out (csrrw x0, mtvec = 0x305, t0) so that plain -march=rv32imc, without the
   zicsr extension name, assembles it. */
__asm__(".section .vectors, \"ax\"\n"
        ".global board_reset\n"
        "board_reset:\n"
        "    la sp, __stack_top\n"
        "    la t0, board_trap\n"
        "    .insn i SYSTEM, 1, x0, t0, 0x305\n"
        "    j board_start\n"
        ".text\n");

/* every exception and interrupt: direct mode needs a 4-byte aligned handler */
__attribute__((aligned(4))) void board_trap(void)
{
    board_fault();
}

uint32_t board_semihost(uint32_t operation, const void *argument)
{
    register uint32_t a0 __asm__("a0") = operation;
    register const void *a1 __asm__("a1") = argument;

    __asm__ volatile(".option push\n"
                     ".option norvc\n"
                     ".balign 16\n"
                     "slli x0, x0, 0x1f\n"
                     "ebreak\n"
                     "srai x0, x0, 7\n"
                     ".option pop\n"
                     : "+r"(a0) : "r"(a1) : "memory");
    return a0;
}
