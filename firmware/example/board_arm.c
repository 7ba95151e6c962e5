/*
 * board_arm.c -- Cortex-M part of the example firmware: the vector table (initial stack
 * pointer, reset and fault handlers) and semihosting through BKPT 0xAB.
 */
#include <stdint.h>

#include "board.h"

extern uint32_t __stack_top;       /* boards/sections.ld */

void board_reset(void);

/* Cortex-M vector table: initial stack pointer, then the handlers (reset, NMI, faults). */
struct vector_table {
    void *stack_top;
    void (*handlers[15])(void);
};

__attribute__((section(".vectors"), used))
static const struct vector_table vectors = {
    &__stack_top,
    {
        board_reset, board_fault, board_fault, board_fault, board_fault, board_fault,
        board_fault, board_fault, board_fault, board_fault, board_fault, board_fault,
        board_fault, board_fault, board_fault,
    },
};

uint32_t board_semihost(uint32_t operation, const void *argument)
{
    register uint32_t r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;

    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* the core has loaded the stack pointer from the vector table */
void board_reset(void)
{
    board_start();
}
