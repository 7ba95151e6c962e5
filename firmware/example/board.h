/*
 * board.h -- the little the example firmware needs from a Cortex-M board under QEMU: text
 * output and exit over semihosting, and the stack high-water mark. No C library is used.
 *
 * Semihosting traps into the debugger (BKPT 0xAB); on a real board without a debugger attached
 * these calls fault, so replace board_print/board_exit with the board's UART and reset.
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

/** Bytes of stack used so far (the reset handler fills the stack with a pattern first). */
uint32_t board_stack_used(void);

#endif /* BOARD_H */
