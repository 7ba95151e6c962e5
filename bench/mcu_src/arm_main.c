/* bench/mcu.py Cortex-M driver: BENCH_RUNS inferences (built twice, with BENCH_RUNS = N and
   0, so that the difference of the two instruction counts is N inferences). */
#include <stdint.h>

#include "bench_images.h"
#include "board.h"

int bench_infer(const uint8_t *input, int32_t *scores);

/* a variable, not the macro: "s < 0U" would be a warning */
static const uint32_t runs = BENCH_RUNS;

int main(void)
{
    int32_t scores[BENCH_N_OUT];
    uint32_t check = 0U;
    uint32_t s;

    for (s = 0U; s < runs; s++) {
        check = (check * 31U) + (uint32_t)bench_infer(bench_images[s % BENCH_N], scores);
    }
    board_print("classes checksum ");
    board_print_u32(check);
    board_print("\n");
    return 0;
}
