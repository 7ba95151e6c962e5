/* bench/mcu.py: the generated event-driven model behind the benchmark's entry point. */
#include <stddef.h>
#include <stdint.h>

#include BENCH_MODEL_H

int bench_infer(const uint8_t *input, int32_t *scores);

int bench_infer(const uint8_t *input, int32_t *scores)
{
    return BENCH_MODEL_INFER(input, scores, NULL);
}
