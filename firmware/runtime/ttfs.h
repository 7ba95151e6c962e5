/*
 * ttfs.h -- event-driven runtime of integer time-to-first-spike networks (C99, header-only).
 *
 * The arithmetic is the integer contract of the TTFS SDK (DESIGN.md section 4), bit for bit:
 *
 *   u_j = bias_j + sum over input events (i, v_i) of weight_ji * v_i      (int32, silent skipped)
 *   t_j = min{ t in [0, T-1] : u_j >= theta[t] }, else NO_SPIKE = T
 *
 * An event is an input that spiked (operand v = kernel[t] of the layer that produced it) or,
 * under `real` input coding, a non-zero pixel byte (v = the byte; a zero byte adds nothing).
 * Every weighted layer only touches the weights of its input events, so the work grows with
 * the number of spikes, not with the number of synapses. Max pooling keeps the earliest spike of
 * each window; flatten leaves the C-order spike times as they are.
 *
 * A generated model file (`<model>_model.c`) holds the weights, tables and the layer sequence as
 * `static const` data plus statically sized scratch buffers, and calls `ttfs_run`. No heap, no
 * floating point, no recursion, no division per event; no library function is called by name,
 * but compilers turn the clearing and the copy of `struct ttfs_stats` into memset/memcpy calls
 * (gcc does), so the link needs those two. The scratch buffers make one model non-reentrant.
 *
 * Weights are packed densely along the fan-out: the weights one input event needs (dense: its
 * column W[0..n_out-1][i]; conv2d: W[0..c_out-1][c_in][dy][dx]) form one row of 32-bit words,
 * F = 32 / TTFS_WEIGHT_BITS fields per word, field f of a word at bits [f*B, f*B + B), the
 * row's last word only partly used. A field holds w + 2^(B-1) (offset binary), so unpacking is
 *   w = (int32_t)((word >> (f * B)) & (2^B - 1)) - 2^(B-1)
 * -- the two's-complement sign extension (x ^ 2^(B-1)) - 2^(B-1) with the exclusive or done at
 * generation time: unsigned shifts and masks only, never a shift of a signed value.
 * 2-bit weights pack 16 per word, 3-bit 10, 4-bit 8, 5-bit 6, 8-bit 4, 16-bit 2.
 *
 * Configuration (define before including this header; a generated model file defines them):
 *   TTFS_WEIGHT_BITS   bits per weight, 2..16 (default 8).
 *   TTFS_TIME_T        unsigned type of the spike times in the scratch buffers (default
 *                      uint16_t; uint8_t holds T <= 255).
 *   TTFS_WITH_CONV2D, TTFS_WITH_MAXPOOL2D, TTFS_WITH_TTFS_INPUT
 *                      1 (default) compiles the conv2d layer, the max pool and the `ttfs` input
 *                      encoder; a model file sets those it does not use to 0, so their code is
 *                      not in its object file.
 *   TTFS_MAX_LAYERS    capacity of `struct ttfs_stats` (see ttfs_stats.h).
 *   TTFS_MUL_TABLE     1: multiply through a per-event table of the 2^B products field * v
 *                      (2^B - 1 additions per event) instead of one multiplication per
 *                      weight -- for cores without a multiplier (RV32E/I without M, where each
 *                      product is a libgcc call). Default: 1 on RISC-V without M and B <= 4.
 */
#ifndef TTFS_H
#define TTFS_H

#include <stddef.h>
#include <stdint.h>

#include "ttfs_stats.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef TTFS_WEIGHT_BITS
#define TTFS_WEIGHT_BITS 8U
#endif
#if (TTFS_WEIGHT_BITS < 2) || (TTFS_WEIGHT_BITS > 16)
#error "TTFS_WEIGHT_BITS must be 2..16"
#endif

#ifndef TTFS_TIME_T
#define TTFS_TIME_T uint16_t
#endif

#ifndef TTFS_WITH_CONV2D
#define TTFS_WITH_CONV2D 1
#endif
#ifndef TTFS_WITH_MAXPOOL2D
#define TTFS_WITH_MAXPOOL2D 1
#endif
#ifndef TTFS_WITH_TTFS_INPUT
#define TTFS_WITH_TTFS_INPUT 1
#endif

#ifndef TTFS_MUL_TABLE
#if defined(__riscv) && !defined(__riscv_mul) && (TTFS_WEIGHT_BITS <= 4)
#define TTFS_MUL_TABLE 1
#else
#define TTFS_MUL_TABLE 0
#endif
#endif
#if TTFS_MUL_TABLE && (TTFS_WEIGHT_BITS > 8)
#error "TTFS_MUL_TABLE needs TTFS_WEIGHT_BITS <= 8"
#endif

/** Weight fields per 32-bit word, the field mask and the offset of the offset-binary code. */
#define TTFS_WEIGHTS_PER_WORD (32U / (uint32_t)(TTFS_WEIGHT_BITS))
#define TTFS_WEIGHT_MASK ((uint32_t)((1UL << (TTFS_WEIGHT_BITS)) - 1UL))
#define TTFS_WEIGHT_OFFSET ((int32_t)(1UL << ((TTFS_WEIGHT_BITS) - 1U)))

/*
 * Storage of ttfs_conv2d: on GCC and Clang a static function that is not inlined into ttfs_run
 * (inlined there, as a function called once, its register pressure made the compiler spill in
 * the inner loop of the dense layers) and raises no warning where it is unused.
 */
#if defined(__GNUC__)
#define TTFS_OUTLINE static __attribute__((noinline, unused))
#define TTFS_UNROLL _Pragma("GCC unroll 16")
#else
#define TTFS_OUTLINE static inline
#define TTFS_UNROLL
#endif

typedef TTFS_TIME_T ttfs_time_t;

/** Layer kinds, in the vocabulary of the IR (sdk/ir.py). */
enum ttfs_kind {
    TTFS_DENSE = 0,
    TTFS_CONV2D = 1,
    TTFS_MAXPOOL2D = 2,
    TTFS_FLATTEN = 3,
    TTFS_OUTPUT = 4
};

/**
 * One layer. Shapes are (channels, height, width); a flat vector of n values is (n, 1, 1).
 * Weighted layers (dense, conv2d, output) have `weight` and `bias`; spiking layers (dense,
 * conv2d) also `theta` [T] and `kernel` [T] (the operand its spikes carry); unused fields are 0.
 * Weights are packed rows of fan-out (see the top of this file), ttfs_row_words(n) words each.
 */
struct ttfs_layer {
    enum ttfs_kind kind;
    const uint32_t *weight;      /* dense, output: [n_in] rows of n_out weights;
                                    conv2d: [k][k][c_in] rows of c_out weights */
    const int32_t *bias;         /* [c_out] */
    const int32_t *theta;        /* [T], non-increasing, >= 1 */
    const uint16_t *kernel;      /* [T], non-increasing */
    uint32_t c_in, h_in, w_in;
    uint32_t c_out, h_out, w_out;
    uint32_t k;                  /* conv2d: kernel size; maxpool2d: window size (= stride) */
    uint32_t stride;             /* conv2d */
    uint32_t padding;            /* conv2d: zero padding on every side */
    uint32_t rows;               /* conv2d: output rows open at once, min(ceil(k/stride), h_out) */
};

/** Where a layer's operands come from: pixel bytes (`real` coding) or spike times. */
struct ttfs_input {
    const uint8_t *pixels;       /* non-NULL: operand = the byte, a zero byte is no event */
    const ttfs_time_t *times;    /* else: input i is an event if times[i] < T ... */
    const uint16_t *kernel;      /* ... with operand kernel[times[i]] */
    uint32_t T;
};

/**
 * A network: the layer sequence (the last layer is the output layer), the input coding and the
 * scratch buffers, all sized by the code generator.
 */
struct ttfs_net {
    uint32_t T;                       /* time steps; NO_SPIKE is encoded as T */
    uint32_t n_layers;
    const struct ttfs_layer *layers;
    const uint16_t *input_times;      /* `ttfs` coding: spike time of each byte [256]; else NULL */
    const uint16_t *input_kernel;     /* `ttfs` coding: operand of input spikes [T]; else NULL */
    int32_t *acc;                     /* [max of dense n_out, conv2d rows x w_out x (c_out + 1)] */
    ttfs_time_t *times[2];            /* spike times, used alternately (see ttfs_run) */
};

static inline uint32_t ttfs_size_in(const struct ttfs_layer *layer)
{
    return layer->c_in * layer->h_in * layer->w_in;
}

static inline uint32_t ttfs_size_out(const struct ttfs_layer *layer)
{
    return layer->c_out * layer->h_out * layer->w_out;
}

/** 32-bit words of one packed row of n weights: ceil(n / TTFS_WEIGHTS_PER_WORD). */
static inline uint32_t ttfs_row_words(uint32_t n)
{
    return (n + TTFS_WEIGHTS_PER_WORD - 1U) / TTFS_WEIGHTS_PER_WORD;
}

/** The signed weight in the low TTFS_WEIGHT_BITS bits of `field` (offset binary). */
static inline int32_t ttfs_weight_value(uint32_t field)
{
    return (int32_t)(field & TTFS_WEIGHT_MASK) - TTFS_WEIGHT_OFFSET;
}

/** Weight f of a packed row (for tests and tools; the layers unpack whole words in order). */
static inline int32_t ttfs_weight_at(const uint32_t *row, uint32_t f)
{
    uint32_t word = row[f / TTFS_WEIGHTS_PER_WORD];
    return ttfs_weight_value(word >> ((f % TTFS_WEIGHTS_PER_WORD) * (uint32_t)TTFS_WEIGHT_BITS));
}

/**
 * The operand v of one input event, ready for ttfs_scatter: v itself, and with TTFS_MUL_TABLE
 * the products u * v of every field value u (built with additions).
 */
struct ttfs_operand {
    uint32_t v;
#if TTFS_MUL_TABLE
    uint32_t product[1U << TTFS_WEIGHT_BITS];
#endif
};

static inline void ttfs_operand_set(struct ttfs_operand *op, uint32_t v)
{
#if TTFS_MUL_TABLE
    uint32_t u;

    op->product[0] = 0U;
    for (u = 1U; u < (1U << TTFS_WEIGHT_BITS); u++) {
        op->product[u] = op->product[u - 1U] + v;
    }
#endif
    op->v = v;
}

/** field * v (mod 2^32) for a field value 0 .. 2^B - 1. */
static inline uint32_t ttfs_times(const struct ttfs_operand *op, uint32_t field)
{
#if TTFS_MUL_TABLE
    return op->product[field];
#else
    return field * op->v;
#endif
}

/**
 * acc[f] += (w_f + 2^(B-1)) * v (mod 2^32) for the n weights w_f of one packed row: the work of
 * one input event, on the raw fields. The caller subtracts 2^(B-1) * (sum of the operands it
 * scattered) once per accumulator afterwards (ttfs_unbias), which leaves exactly
 * sum of w_f * v: a field load, shift/mask and multiply-add per weight, no sign handling.
 * The arithmetic is unsigned (wraps, never overflows); the final value is the true int32 sum.
 * Each word is loaded once; the field loop has a constant trip count and is unrolled.
 */
static inline void ttfs_scatter(const uint32_t *row, uint32_t n, const struct ttfs_operand *op,
                                uint32_t *acc)
{
    uint32_t f;

    while (n >= TTFS_WEIGHTS_PER_WORD) {
        uint32_t word = row[0];
        TTFS_UNROLL
        for (f = 0U; f < TTFS_WEIGHTS_PER_WORD; f++) {
            acc[f] += ttfs_times(op, word & TTFS_WEIGHT_MASK);
            word >>= (uint32_t)TTFS_WEIGHT_BITS;
        }
        row = &row[1];
        acc = &acc[TTFS_WEIGHTS_PER_WORD];
        n -= TTFS_WEIGHTS_PER_WORD;
    }
    if (n > 0U) {
        uint32_t word = row[0];
        for (f = 0U; f < n; f++) {
            acc[f] += ttfs_times(op, word & TTFS_WEIGHT_MASK);
            word >>= (uint32_t)TTFS_WEIGHT_BITS;
        }
    }
}

/**
 * An accumulator of raw scatters as the signed membrane potential: raw - 2^(B-1) * operands
 * (mod 2^32), as int32_t without an implementation-defined conversion (the true value lies in
 * the int32 range by the quantizer's accumulator bound).
 */
static inline int32_t ttfs_unbias(uint32_t raw, uint32_t operands)
{
    uint32_t x = raw - ((uint32_t)TTFS_WEIGHT_OFFSET * operands);
    return (x <= 0x7FFFFFFFU) ? (int32_t)x : -(int32_t)(~x) - 1;
}

/**
 * First t in [0, T-1] with v_mem >= theta[t], or T. theta is non-increasing, so the steps that
 * fire form a suffix of [0, T-1]: a binary search finds its start. Most neurons stay below
 * theta[T-1] (the dead zone), which the first comparison settles.
 */
static inline uint32_t ttfs_first_crossing(int32_t v_mem, const int32_t *theta, uint32_t T)
{
    uint32_t lo = 0U;
    uint32_t hi = T - 1U;

    if (v_mem < theta[hi]) {
        return T;
    }
    while (lo < hi) {
        uint32_t mid = lo + ((hi - lo) / 2U);
        if (v_mem >= theta[mid]) {
            hi = mid;
        } else {
            lo = mid + 1U;
        }
    }
    return lo;
}

/** 1 if input i is an event (a non-zero pixel byte, or a spike), with its operand in *operand. */
static inline int ttfs_input_event(const struct ttfs_input *in, uint32_t i, int32_t *operand)
{
    if (in->pixels != NULL) {
        *operand = (int32_t)in->pixels[i];
        return in->pixels[i] != 0U;
    }
    if (in->times[i] < in->T) {
        *operand = (int32_t)in->kernel[in->times[i]];
        return 1;
    }
    return 0;
}

#if TTFS_WITH_TTFS_INPUT
/** `ttfs` input coding: times[i] = input_times[pixel i]; returns the number of input spikes. */
static inline uint32_t ttfs_encode_input(const uint8_t *pixels, uint32_t n,
                                         const uint16_t *input_times, uint32_t T,
                                         ttfs_time_t *times)
{
    uint32_t spikes = 0U;
    uint32_t i;

    for (i = 0U; i < n; i++) {
        times[i] = (ttfs_time_t)input_times[pixels[i]];
        if (times[i] < T) {
            spikes++;
        }
    }
    return spikes;
}
#endif

/**
 * Dense (or output) layer: acc[j] = bias[j] + sum over input events (i, v) of W[j][i] * v.
 * Each event adds its packed weight row (i) times v to all n_out accumulators (ttfs_scatter,
 * raw fields); one pass at the end removes the offset (ttfs_unbias with the sum of the
 * operands). Inputs that did not spike cost one comparison. Returns the SOPs (events x n_out);
 * an event whose operand is 0 (kernel[t] = 0) counts but adds nothing, so its row is not read.
 * `raw` is `acc` seen as uint32_t (the signed and unsigned variants of one type may alias).
 */
static inline uint32_t ttfs_dense(const struct ttfs_layer *layer, const struct ttfs_input *in,
                                  int32_t *acc)
{
    const uint32_t n_in = ttfs_size_in(layer);
    const uint32_t n_out = ttfs_size_out(layer);
    const uint32_t words = ttfs_row_words(n_out);
    const uint32_t *row = layer->weight;    /* the packed row of input i */
    uint32_t *raw = (uint32_t *)acc;
    struct ttfs_operand op;
    uint32_t operands = 0U;
    uint32_t events = 0U;
    uint32_t i;

    for (i = 0U; i < n_out; i++) {
        raw[i] = (uint32_t)layer->bias[i];
    }
    if (in->pixels != NULL) {
        for (i = 0U; i < n_in; i++) {
            uint32_t v = in->pixels[i];
            if (v != 0U) {
                ttfs_operand_set(&op, v);
                ttfs_scatter(row, n_out, &op, raw);
                operands += v;
                events++;
            }
            row = &row[words];
        }
    } else {
        for (i = 0U; i < n_in; i++) {
            if (in->times[i] < in->T) {
                uint32_t v = in->kernel[in->times[i]];
                if (v != 0U) {
                    ttfs_operand_set(&op, v);
                    ttfs_scatter(row, n_out, &op, raw);
                    operands += v;
                }
                events++;
            }
            row = &row[words];
        }
    }
    for (i = 0U; i < n_out; i++) {
        acc[i] = ttfs_unbias(raw[i], operands);
    }
    return events * n_out;
}

/** Spike times of n neurons with membrane potentials acc; returns how many fired. */
static inline uint32_t ttfs_fire(const int32_t *acc, uint32_t n, const int32_t *theta,
                                 uint32_t T, ttfs_time_t *times)
{
    uint32_t spikes = 0U;
    uint32_t i;

    for (i = 0U; i < n; i++) {
        times[i] = (ttfs_time_t)ttfs_first_crossing(acc[i], theta, T);
        if (times[i] < T) {
            spikes++;
        }
    }
    return spikes;
}

#if TTFS_WITH_CONV2D
/** Conv2d: one accumulator row [w_out][c_out] set to the biases, its operand sums to 0. */
static inline void ttfs_conv_open_row(const struct ttfs_layer *layer, uint32_t *row,
                                      uint32_t *operands)
{
    uint32_t ox;
    uint32_t c;

    for (ox = 0U; ox < layer->w_out; ox++) {
        for (c = 0U; c < layer->c_out; c++) {
            row[c] = (uint32_t)layer->bias[c];
        }
        row = &row[layer->c_out];
        operands[ox] = 0U;
    }
}

/** Conv2d: spike times of output row oy from its raw accumulators [w_out][c_out] and operand
    sums [w_out] into out[c_out][h_out][w_out]; returns how many fired. */
static inline uint32_t ttfs_conv_fire_row(const struct ttfs_layer *layer, const uint32_t *row,
                                          const uint32_t *operands, uint32_t oy, uint32_t T,
                                          ttfs_time_t *out)
{
    uint32_t plane = layer->h_out * layer->w_out;
    uint32_t spikes = 0U;
    uint32_t ox;
    uint32_t c;

    for (ox = 0U; ox < layer->w_out; ox++) {
        uint32_t at = (oy * layer->w_out) + ox;         /* (c, oy, ox), c = 0, 1, ... */
        for (c = 0U; c < layer->c_out; c++) {
            uint32_t time = ttfs_first_crossing(ttfs_unbias(row[c], operands[ox]),
                                                layer->theta, T);
            out[at] = (ttfs_time_t)time;
            at += plane;
            spikes += (time < T) ? 1U : 0U;
        }
        row = &row[layer->c_out];
    }
    return spikes;
}

/**
 * Conv2d layer, event-driven, row by row. Output row oy sees input rows
 * oy * stride - padding .. + k - 1: it is opened (set to the biases) when the first of them is
 * read and fired as soon as the last one is, so only `layer->rows` output rows of
 * accumulators exist at a time, a ring acc[rows][w_out][c_out] (raw, see ttfs_scatter),
 * followed in the same buffer by the operand sum of each open position, [rows][w_out].
 *
 * Input rows are read in order, each position (y, x) for every input channel; an event
 * (c_in, y, x) with operand v adds, for every open row oy and every column ox that covers x,
 *   v * W[0 .. c_out-1][c_in][dy][dx]  to  acc[ring row of oy][ox][0 .. c_out-1]
 * (dy = y + padding - oy * stride, dx = x + padding - ox * stride): one packed row of c_out
 * weights (ttfs_scatter), and v to the position's operand sum. The covered columns of x follow from those of x - 1 by comparisons:
 * no division anywhere.
 *
 * Writes the spike times out[c_out][h_out][w_out] (C order) and returns how many fired; adds
 * the SOPs (per event: c_out x the covered output positions) to *sops.
 */
TTFS_OUTLINE uint32_t ttfs_conv2d(const struct ttfs_layer *layer, const struct ttfs_input *in,
                                  int32_t *acc_buffer, ttfs_time_t *out, uint32_t *sops)
{
    uint32_t *acc = (uint32_t *)acc_buffer;
    uint32_t *operands = &acc[layer->rows * layer->w_out * layer->c_out];
    const uint32_t k = layer->k;
    const uint32_t s = layer->stride;
    const uint32_t p = layer->padding;
    const uint32_t c_out = layer->c_out;
    const uint32_t words = ttfs_row_words(c_out);       /* one packed row of weights */
    const uint32_t row_len = layer->w_out * c_out;      /* one ring row */
    const uint32_t ring_len = layer->rows * row_len;
    const uint32_t tap = layer->c_in * words;           /* weight words of one (dy, dx) */
    const uint32_t col_step = s * tap;                  /* weight words from column ox to ox+1 */
    const uint32_t row_step = s * k * tap;              /* ... from output row oy to oy+1 */
    const uint32_t plane = layer->h_in * layer->w_in;
    uint32_t y_lo = 0U;                                 /* open output rows: [y_lo, y_hi) */
    uint32_t y_hi = 0U;
    uint32_t ring_lo = 0U;                              /* ring row of output row y_lo */
    uint32_t ring_acc = 0U;                             /* ring_lo * row_len */
    uint32_t ring_sum = 0U;                             /* ring_lo * w_out */
    uint32_t position = 0U;                             /* y * w_in + x */
    uint32_t spikes = 0U;
    uint32_t y;

    for (y = 0U; y < layer->h_in; y++) {
        uint32_t x_lo = 0U;                             /* covered columns: [x_lo, x_hi) */
        uint32_t x_hi = 0U;
        uint32_t x_acc = 0U;                            /* x_lo * c_out */
        uint32_t x;

        while ((y_hi < layer->h_out) && ((y_hi * s) <= (y + p))) {
            uint32_t ring = ring_lo + (y_hi - y_lo);
            ring = (ring >= layer->rows) ? ring - layer->rows : ring;
            ttfs_conv_open_row(layer, &acc[ring * row_len], &operands[ring * layer->w_out]);
            y_hi++;
        }
        for (x = 0U; x < layer->w_in; x++) {
            uint32_t index = position;                  /* input (c_in, y, x) */
            uint32_t first = 0U;                        /* weight word of (dy of y_lo, dx of
                                                           x_lo, c_in 0); set at the 1st event */
            uint32_t events = 0U;
            uint32_t c_words = 0U;                      /* c_in * words */
            uint32_t c_in;

            while ((x_hi < layer->w_out) && ((x_hi * s) <= (x + p))) {
                x_hi++;
            }
            while ((x_lo < x_hi) && (((x_lo * s) + k) <= (x + p))) {
                x_lo++;
                x_acc += c_out;
            }
            for (c_in = 0U; c_in < layer->c_in; c_in++) {
                struct ttfs_operand op;
                int32_t v;
                uint32_t w;
                uint32_t a_off = ring_acc;
                uint32_t s_off = ring_sum;
                uint32_t oy;

                if (ttfs_input_event(in, index, &v)) {
                    if (events == 0U) {
                        first = (((y + p - (y_lo * s)) * k) + (x + p - (x_lo * s))) * tap;
                    }
                    events++;
                    ttfs_operand_set(&op, (uint32_t)v);
                    w = first + c_words;
                    for (oy = y_lo; oy < y_hi; oy++) {
                        uint32_t *a = &acc[a_off + x_acc];
                        uint32_t *sum = &operands[s_off + x_lo];
                        uint32_t ww = w;
                        uint32_t ox;
                        for (ox = x_lo; ox < x_hi; ox++) {
                            ttfs_scatter(&layer->weight[ww], c_out, &op, a);
                            *sum += (uint32_t)v;
                            sum = &sum[1];
                            a = &a[c_out];
                            ww -= col_step;     /* wraps after the last column: never used */
                        }
                        w -= row_step;          /* wraps after the last row: never used */
                        a_off += row_len;
                        s_off += layer->w_out;
                        if (a_off == ring_len) {
                            a_off = 0U;
                            s_off = 0U;
                        }
                    }
                }
                index += plane;
                c_words += words;
            }
            if (events != 0U) {
                *sops += events * c_out * (y_hi - y_lo) * (x_hi - x_lo);
            }
            position++;
        }
        while ((y_lo < y_hi) && ((((y_lo * s) + k) <= (y + p + 1U)) || (y + 1U == layer->h_in))) {
            spikes += ttfs_conv_fire_row(layer, &acc[ring_acc], &operands[ring_sum], y_lo,
                                         in->T, out);
            y_lo++;
            ring_lo++;
            ring_acc += row_len;
            ring_sum += layer->w_out;
            if (ring_lo == layer->rows) {
                ring_lo = 0U;
                ring_acc = 0U;
                ring_sum = 0U;
            }
        }
    }
    return spikes;
}
#endif

#if TTFS_WITH_MAXPOOL2D
/** Max pooling on spike times: the earliest spike of each k x k window (stride k; partial
    windows at the right and bottom borders are dropped). */
static inline void ttfs_maxpool2d(const struct ttfs_layer *layer, const ttfs_time_t *in,
                                  ttfs_time_t *out)
{
    const uint32_t k = layer->k;
    const uint32_t w_in = layer->w_in;
    uint32_t c;
    uint32_t oy;
    uint32_t ox;
    uint32_t dy;
    uint32_t dx;

    for (c = 0U; c < layer->c_out; c++) {
        const ttfs_time_t *band = &in[c * layer->h_in * w_in];   /* input rows of oy */
        for (oy = 0U; oy < layer->h_out; oy++) {
            const ttfs_time_t *window = band;
            for (ox = 0U; ox < layer->w_out; ox++) {
                ttfs_time_t earliest = window[0];
                for (dy = 0U; dy < k; dy++) {
                    const ttfs_time_t *row = &window[dy * w_in];
                    for (dx = 0U; dx < k; dx++) {
                        earliest = (row[dx] < earliest) ? row[dx] : earliest;
                    }
                }
                *out = earliest;
                out = &out[1];
                window = &window[k];
            }
            band = &band[k * w_in];
        }
    }
}
#endif

/** The first index of the largest score (lowest index on ties). */
static inline int ttfs_argmax(const int32_t *scores, uint32_t n)
{
    uint32_t best = 0U;
    uint32_t i;

    for (i = 1U; i < n; i++) {
        if (scores[i] > scores[best]) {
            best = i;
        }
    }
    return (int)best;
}

/** Append n spike times to the trace (if any); returns where the next layer's times go. */
static inline uint16_t *ttfs_trace_append(uint16_t *trace, const ttfs_time_t *times, uint32_t n)
{
    uint32_t i;

    if (trace == NULL) {
        return NULL;
    }
    for (i = 0U; i < n; i++) {
        trace[i] = (uint16_t)times[i];
    }
    return &trace[n];
}

/**
 * One inference: writes the output layer's membrane potentials to `scores` and returns the
 * class (first index of the maximum). `stats` (may be NULL) receives the spike counts and SOPs.
 * `trace` (may be NULL) receives the spike times of every layer that produces them, in order:
 * the input layer under `ttfs` coding, each spiking layer and each max pool (NO_SPIKE = T).
 *
 * Spike times go alternately to net->times[0] and net->times[1]: each layer (and the input
 * encoder) that produces times writes the buffer the previous one did not. Weighted layers
 * read their input (pixels or spike times) in place.
 */
static inline int ttfs_run(const struct ttfs_net *net, const uint8_t *input, int32_t *scores,
                           struct ttfs_stats *stats, uint16_t *trace)
{
    struct ttfs_stats counts = {0U, {0U}, 0U};
    struct ttfs_input in;
    uint32_t next = 0U;
    uint32_t spiking = 0U;
    uint32_t i;
    int result = 0;

    in.pixels = input;                 /* pixels until a layer has produced spike times */
    in.times = NULL;
    in.kernel = net->input_kernel;
    in.T = net->T;
#if TTFS_WITH_TTFS_INPUT
    if (net->input_times != NULL) {
        uint32_t n = ttfs_size_in(&net->layers[0]);
        counts.input_spikes = ttfs_encode_input(input, n, net->input_times, net->T,
                                                net->times[next]);
        in.pixels = NULL;
        in.times = net->times[next];
        next ^= 1U;
        trace = ttfs_trace_append(trace, in.times, n);
    }
#endif
    for (i = 0U; i < net->n_layers; i++) {
        const struct ttfs_layer *layer = &net->layers[i];
        uint32_t n_out = ttfs_size_out(layer);
        ttfs_time_t *out = net->times[next];
        uint32_t sops = 0U;

        if (layer->kind == TTFS_FLATTEN) {
            continue;
        }
        if (layer->kind == TTFS_OUTPUT) {
            sops = ttfs_dense(layer, &in, scores);
            counts.sops += (in.pixels == NULL) ? sops : 0U;
            result = ttfs_argmax(scores, n_out);
            break;
        }
        if (layer->kind == TTFS_DENSE) {
            sops = ttfs_dense(layer, &in, net->acc);
            counts.spikes[spiking] = ttfs_fire(net->acc, n_out, layer->theta, net->T, out);
            spiking++;
            in.kernel = layer->kernel;
#if TTFS_WITH_CONV2D
        } else if (layer->kind == TTFS_CONV2D) {
            counts.spikes[spiking] = ttfs_conv2d(layer, &in, net->acc, out, &sops);
            spiking++;
            in.kernel = layer->kernel;
#endif
#if TTFS_WITH_MAXPOOL2D
        } else if (layer->kind == TTFS_MAXPOOL2D) {
            ttfs_maxpool2d(layer, in.times, out);
#endif
        } else {
            break;                     /* a kind this build left out: the model file says so */
        }
        counts.sops += (in.pixels == NULL) ? sops : 0U;
        in.pixels = NULL;
        in.times = out;
        next ^= 1U;
        trace = ttfs_trace_append(trace, out, n_out);
    }
    if (stats != NULL) {
        *stats = counts;
    }
    return result;
}

#ifdef __cplusplus
}
#endif

#endif /* TTFS_H */
