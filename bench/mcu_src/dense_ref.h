/*
 * dense_ref.h -- the straightforward dense baseline of bench/mcu.py: the same integer network
 * as firmware/runtime/ttfs.h computes, but every layer multiplies every weight by every
 * operand (0 for a silent input) and fires by scanning the threshold table from t = 0.
 */
#ifndef DENSE_REF_H
#define DENSE_REF_H

#include <stdint.h>

/* operands[i] = kernel[times[i]], 0 for a silent input (times[i] == T) */
static inline void dense_operands(const uint16_t *times, uint32_t n, const uint16_t *kernel,
                                  uint32_t T, uint16_t *operands)
{
    uint32_t i;

    for (i = 0U; i < n; i++) {
        operands[i] = (times[i] < T) ? kernel[times[i]] : 0U;
    }
}

static inline uint16_t dense_fire(int32_t v_mem, const int32_t *theta, uint32_t T)
{
    uint32_t t;

    for (t = 0U; t < T; t++) {
        if (v_mem >= theta[t]) {
            break;
        }
    }
    return (uint16_t)t;
}

/* acc[j] = bias[j] + sum_i weight[j][i] * x[i] */
static inline void dense_matmul(const int8_t *weight, const int32_t *bias, const uint16_t *x,
                                uint32_t n_in, uint32_t n_out, int32_t *acc)
{
    uint32_t i;
    uint32_t j;

    for (j = 0U; j < n_out; j++) {
        const int8_t *row = &weight[j * n_in];
        int32_t sum = bias[j];
        for (i = 0U; i < n_in; i++) {
            sum += (int32_t)row[i] * (int32_t)x[i];
        }
        acc[j] = sum;
    }
}

/* zero-padded convolution of x [c_in][h][w]; acc [c_out][h_out][w_out] */
static inline void dense_conv(const int8_t *weight, const int32_t *bias, const uint16_t *x,
                              uint32_t c_in, uint32_t h, uint32_t w, uint32_t c_out,
                              uint32_t h_out, uint32_t w_out, uint32_t k, uint32_t stride,
                              uint32_t padding, int32_t *acc)
{
    uint32_t c;
    uint32_t ci;
    uint32_t oy;
    uint32_t ox;
    uint32_t dy;
    uint32_t dx;

    for (c = 0U; c < c_out; c++) {
        for (oy = 0U; oy < h_out; oy++) {
            uint32_t y0 = oy * stride;   /* input row of dy = 0, plus padding */
            uint32_t dy_lo = (y0 < padding) ? padding - y0 : 0U;
            uint32_t dy_hi = (h + padding - y0 < k) ? h + padding - y0 : k;
            for (ox = 0U; ox < w_out; ox++) {
                uint32_t x0 = ox * stride;
                uint32_t dx_lo = (x0 < padding) ? padding - x0 : 0U;
                uint32_t dx_hi = (w + padding - x0 < k) ? w + padding - x0 : k;
                int32_t sum = bias[c];
                for (ci = 0U; ci < c_in; ci++) {
                    const int8_t *wk = &weight[((c * c_in) + ci) * k * k];
                    const uint16_t *plane = &x[ci * h * w];
                    for (dy = dy_lo; dy < dy_hi; dy++) {
                        const uint16_t *row = &plane[(y0 + dy - padding) * w];
                        for (dx = dx_lo; dx < dx_hi; dx++) {
                            sum += (int32_t)wk[(dy * k) + dx] * (int32_t)row[x0 + dx - padding];
                        }
                    }
                }
                acc[(((c * h_out) + oy) * w_out) + ox] = sum;
            }
        }
    }
}

static inline void dense_fire_all(const int32_t *acc, uint32_t n, const int32_t *theta,
                                  uint32_t T, uint16_t *times)
{
    uint32_t i;

    for (i = 0U; i < n; i++) {
        times[i] = dense_fire(acc[i], theta, T);
    }
}

static inline void dense_pool(const uint16_t *in, uint32_t c_n, uint32_t h, uint32_t w,
                              uint32_t size, uint16_t *out)
{
    uint32_t c;
    uint32_t oy;
    uint32_t ox;
    uint32_t dy;
    uint32_t dx;

    for (c = 0U; c < c_n; c++) {
        for (oy = 0U; oy < h / size; oy++) {
            for (ox = 0U; ox < w / size; ox++) {
                uint16_t best = in[(c * h * w) + (oy * size * w) + (ox * size)];
                for (dy = 0U; dy < size; dy++) {
                    for (dx = 0U; dx < size; dx++) {
                        uint16_t t = in[(c * h * w) + (((oy * size) + dy) * w) + (ox * size) + dx];
                        best = (t < best) ? t : best;
                    }
                }
                out[(((c * (h / size)) + oy) * (w / size)) + ox] = best;
            }
        }
    }
}

#endif /* DENSE_REF_H */
