/* bench/mcu.py host driver: runs bench_infer on every image of bench_images.h and prints
   each class and score (checked against the golden simulator). */
#include <stdint.h>
#include <stdio.h>

#include "bench_images.h"

int bench_infer(const uint8_t *input, int32_t *scores);

int main(void)
{
    int32_t scores[BENCH_N_OUT];
    uint32_t s;
    uint32_t i;

    for (s = 0U; s < BENCH_RUNS; s++) {
        printf("%d", bench_infer(bench_images[s % BENCH_N], scores));
        for (i = 0U; i < BENCH_N_OUT; i++) {
            printf(" %ld", (long)scores[i]);
        }
        printf("\n");
    }
    return 0;
}
