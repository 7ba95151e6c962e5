/*
 * board.h -- the little the example firmware needs from a board under QEMU: text output and
 * exit over semihosting, and the stack high-water mark. No C library is used.
 *
 * board.c holds what every board shares; board_arm.c (Cortex-M: vector table, BKPT 0xAB) and
 * board_riscv.c (RV32: entry code, trap vector, the EBREAK sequence) hold what differs.
 * Semihosting traps into the debugger; on a real board without a debugger attached these calls
 * fault, so replace board_print/board_exit with the board's UART and reset.
 */
#ifndef BOARD_H
#define BOARD_H

#include <stdint.h>

/** Write a NUL-terminated string to the host console. */
void board_print(const char *text);

/** Write an unsigned number in decimal. */
void board_print_u32(uint32_t value);

/** Stop the program; QEMU exits with `status`. */
void board_exit(int status);

/** Bytes of stack used so far (the startup code fills the stack with a pattern first). */
uint32_t board_stack_used(void);

/** Print "fault" and exit with status 2 (every trap and fault handler). */
void board_fault(void);

/** Copy .data, clear .bss, paint the stack, run main and exit with its status (board.c). */
void board_start(void);

/** One semihosting call `operation` with its parameter block (board_arm.c, board_riscv.c). */
uint32_t board_semihost(uint32_t operation, const void *argument);

#endif /* BOARD_H */
