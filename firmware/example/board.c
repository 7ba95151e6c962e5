/*
 * board.c -- what every example board shares: semihosting output and exit on top of
 * board_semihost (board_arm.c, board_riscv.c), and the start of the C program.
 *
 * board_start copies .data from flash, clears .bss, paints the stack with a pattern (for
 * board_stack_used), runs main and exits with its return value. Any fault prints "fault" and
 * exits with status 2, so a broken build fails fast instead of hanging.
 */
#include <stdint.h>

#include "board.h"

#define SEMIHOST_WRITE0 0x04U
#define SEMIHOST_EXIT_EXTENDED 0x20U
#define SEMIHOST_APPLICATION_EXIT 0x20026U
#define STACK_PATTERN 0x5AA5F00DU

/* Provided by the linker script (boards/sections.ld). */
extern uint32_t __data_start;
extern uint32_t __data_end;
extern uint32_t __data_load;
extern uint32_t __bss_start;
extern uint32_t __bss_end;
extern uint32_t __stack_bottom;
extern uint32_t __stack_top;

int main(void);

void board_print(const char *text)
{
    (void)board_semihost(SEMIHOST_WRITE0, text);
}

void board_print_u32(uint32_t value)
{
    char digits[11];
    uint32_t i = sizeof(digits) - 1U;

    digits[i] = '\0';
    do {
        i--;
        digits[i] = (char)('0' + (value % 10U));
        value /= 10U;
    } while (value != 0U);
    board_print(&digits[i]);
}

void board_exit(int status)
{
    uint32_t block[2] = { SEMIHOST_APPLICATION_EXIT, (uint32_t)status };

    (void)board_semihost(SEMIHOST_EXIT_EXTENDED, block);
    for (;;) {
    }
}

uint32_t board_stack_used(void)
{
    const uint32_t *p = &__stack_bottom;

    while (p < &__stack_top && *p == STACK_PATTERN) {
        p++;
    }
    return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)p);
}

void board_fault(void)
{
    board_print("fault\n");
    board_exit(2);
}

void board_start(void)
{
    uint32_t here = 0U;
    const uint32_t *src = &__data_load;
    uint32_t *dst;

    for (dst = &__data_start; dst < &__data_end; dst++) {
        *dst = *src;
        src++;
    }
    for (dst = &__bss_start; dst < &__bss_end; dst++) {
        *dst = 0U;
    }
    /* paint the stack below this frame (64 bytes of margin below `here`) */
    for (dst = &__stack_bottom; (uintptr_t)dst + 64U < (uintptr_t)&here; dst++) {
        *dst = STACK_PATTERN;
    }
    board_exit(main());
}
