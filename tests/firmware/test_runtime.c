/*
 * Hand-checked cases of the C runtime (firmware/runtime/ttfs.h), run by tests/test_mcu_runtime.py
 * with strict warnings and again under ASan/UBSan, for int8_t and int16_t weights.
 * Prints one line per failed check and exits with the number of failures.
 */
#include <stdio.h>

#include "ttfs.h"

/* the largest weight of TTFS_WEIGHT_BITS bits: 2^(B-1) - 1 */
#define W_MAX ((int32_t)((1UL << (TTFS_WEIGHT_BITS - 1U)) - 1UL))

static int failures = 0;

#define CHECK_EQ(got, expected)                                                              \
    do {                                                                                     \
        long long got_ = (long long)(got);                                                   \
        long long expected_ = (long long)(expected);                                         \
        if (got_ != expected_) {                                                             \
            printf("%s:%d: %s = %lld, expected %lld\n", __FILE__, __LINE__, #got, got_,      \
                   expected_);                                                               \
            failures++;                                                                      \
        }                                                                                    \
    } while (0)

/* pack rows x n signed weights (row-major) the way codegen/mcu_view.py does: offset binary,
   F = 32 / B fields per word, field f at bits f*B; returns the words written */
static uint32_t pack(const int32_t *w, uint32_t rows, uint32_t n, uint32_t *out)
{
    uint32_t words = ttfs_row_words(n);
    uint32_t r;
    uint32_t i;

    for (i = 0U; i < rows * words; i++) {
        out[i] = 0U;
    }
    for (r = 0U; r < rows; r++) {
        for (i = 0U; i < n; i++) {
            uint32_t field = (uint32_t)(w[(r * n) + i] + TTFS_WEIGHT_OFFSET);
            out[(r * words) + (i / TTFS_WEIGHTS_PER_WORD)] |=
                field << ((i % TTFS_WEIGHTS_PER_WORD) * (uint32_t)TTFS_WEIGHT_BITS);
        }
    }
    return rows * words;
}

/* every weight value -W_MAX..W_MAX in a row of 3F + 1 (a partly used last word): unpacked
   one by one, and scattered raw: acc[f] = f + (w_f + 2^(B-1)) * 3, which ttfs_unbias with the
   operand sum 3 turns into f + w_f * 3 */
static void test_packed_weights(void)
{
    enum { N = (3 * (32 / TTFS_WEIGHT_BITS)) + 1 };
    int32_t w[N];
    uint32_t row[N];
    uint32_t acc[N + 1];
    struct ttfs_operand three;
    uint32_t i;

    for (i = 0U; i < (uint32_t)N; i++) {
        w[i] = ((int32_t)(i % (2U * (uint32_t)W_MAX + 1U))) - W_MAX;
        acc[i] = i;
    }
    acc[N] = 77;
    CHECK_EQ(pack(w, 1U, N, row), ttfs_row_words(N));
    CHECK_EQ(ttfs_row_words(N), 4U);
    for (i = 0U; i < (uint32_t)N; i++) {
        CHECK_EQ(ttfs_weight_at(row, i), w[i]);
    }
    ttfs_operand_set(&three, 3U);
    CHECK_EQ(ttfs_times(&three, TTFS_WEIGHT_MASK), 3U * TTFS_WEIGHT_MASK);
    ttfs_scatter(row, N, &three, acc);
    for (i = 0U; i < (uint32_t)N; i++) {
        CHECK_EQ(acc[i], i + (uint32_t)((w[i] + TTFS_WEIGHT_OFFSET) * 3));
        CHECK_EQ(ttfs_unbias(acc[i], 3U), (int32_t)i + (w[i] * 3));
    }
    CHECK_EQ(acc[N], 77);     /* nothing written past the row */
}

/* theta = {10, 6, 3, 1}: a neuron fires at the first step whose threshold it reaches */
static void test_first_crossing(void)
{
    static const int32_t theta[4] = { 10, 6, 3, 1 };

    CHECK_EQ(ttfs_first_crossing(12, theta, 4U), 0U);   /* saturated: above theta[0] */
    CHECK_EQ(ttfs_first_crossing(10, theta, 4U), 0U);   /* equality fires */
    CHECK_EQ(ttfs_first_crossing(9, theta, 4U), 1U);
    CHECK_EQ(ttfs_first_crossing(6, theta, 4U), 1U);
    CHECK_EQ(ttfs_first_crossing(5, theta, 4U), 2U);
    CHECK_EQ(ttfs_first_crossing(1, theta, 4U), 3U);
    CHECK_EQ(ttfs_first_crossing(0, theta, 4U), 4U);    /* dead zone: NO_SPIKE = T */
    CHECK_EQ(ttfs_first_crossing(-7, theta, 4U), 4U);
}

/* a flat threshold table: every step fires at once or never */
static void test_first_crossing_flat(void)
{
    static const int32_t theta[5] = { 4, 4, 4, 4, 4 };

    CHECK_EQ(ttfs_first_crossing(4, theta, 5U), 0U);
    CHECK_EQ(ttfs_first_crossing(3, theta, 5U), 5U);
}

static void test_input_events(void)
{
    static const uint8_t pixels[4] = { 0U, 7U, 0U, 255U };
    static const ttfs_time_t times[4] = { 2U, 4U, 0U, 3U };      /* T = 4: input 1 silent */
    static const uint16_t kernel[4] = { 100U, 50U, 25U, 0U };    /* kernel[3] = 0: an event */
    struct ttfs_input from_pixels = { pixels, NULL, NULL, 4U };
    struct ttfs_input from_times = { NULL, times, kernel, 4U };
    int32_t v = -1;

    CHECK_EQ(ttfs_input_event(&from_pixels, 0U, &v), 0);
    CHECK_EQ(ttfs_input_event(&from_pixels, 3U, &v), 1);
    CHECK_EQ(v, 255);
    CHECK_EQ(ttfs_input_event(&from_times, 0U, &v), 1);
    CHECK_EQ(v, 25);
    CHECK_EQ(ttfs_input_event(&from_times, 1U, &v), 0);
    CHECK_EQ(ttfs_input_event(&from_times, 3U, &v), 1);
    CHECK_EQ(v, 0);
}

static void test_encode_input(void)
{
    uint16_t table[256];
    static const uint8_t pixels[3] = { 0U, 128U, 255U };
    ttfs_time_t times[3];
    uint32_t i;

    for (i = 0U; i < 256U; i++) {
        table[i] = (uint16_t)((i < 100U) ? 4U : (255U - i) / 64U);   /* dark pixels: silent */
    }
    CHECK_EQ(ttfs_encode_input(pixels, 3U, table, 4U, times), 2U);
    CHECK_EQ(times[0], 4U);
    CHECK_EQ(times[1], 1U);   /* (255 - 128) / 64 */
    CHECK_EQ(times[2], 0U);
}

#if TTFS_WEIGHT_BITS >= 5
/* W = {1, -2, 3; -4, 5, -6} [n_out][n_in], stored as rows of fan-out W.T = {1, -4; -2, 5; 3, -6}:
   acc_j = bias_j + sum over events (i, v) of W[j][i] * v */
static void test_dense(void)
{
    static const int32_t w[6] = { 1, -4, -2, 5, 3, -6 };
    static uint32_t weight[3 * 2];
    static const int32_t bias[2] = { 10, -10 };
    static const uint8_t pixels[3] = { 2U, 0U, 1U };           /* events (0, 2), (2, 1) */
    static const uint8_t dark[3] = { 0U, 0U, 0U };
    struct ttfs_layer layer = { TTFS_DENSE, weight, bias, NULL, NULL,
                                3U, 1U, 1U, 2U, 1U, 1U, 0U, 0U, 0U, 0U };
    struct ttfs_input in = { pixels, NULL, NULL, 4U };
    int32_t acc[2];

    (void)pack(w, 3U, 2U, weight);
    CHECK_EQ(ttfs_dense(&layer, &in, acc), 4U);   /* 2 events x 2 outputs */
    CHECK_EQ(acc[0], 15);      /* 10 + 1*2 + 3*1 */
    CHECK_EQ(acc[1], -24);     /* -10 - 4*2 - 6*1 */
    in.pixels = dark;
    CHECK_EQ(ttfs_dense(&layer, &in, acc), 0U);
    CHECK_EQ(acc[0], 10);      /* no events: the bias */
}

/* pixels as conv input (operand = the byte); theta {1000000}: nothing fires, and with
   rows = h_out the ring holds every output row [h_out][w_out][c_out] after the call (raw,
   followed by the operand sums [h_out][w_out]): acc[0 .. h_out * w_out * c_out - 1] becomes
   the membrane potentials */
static const int32_t never[1] = { 1000000 };

static uint32_t conv_pixels(const struct ttfs_layer *layer, const uint8_t *pixels, int32_t *acc)
{
    struct ttfs_input in = { NULL, NULL, NULL, 1U };
    const uint32_t positions = layer->h_out * layer->w_out;
    const uint32_t *raw = (const uint32_t *)acc;
    ttfs_time_t out[16];
    uint32_t sops = 0U;
    uint32_t i;

    in.pixels = pixels;
    CHECK_EQ(ttfs_conv2d(layer, &in, acc, out, &sops), 0U);
    for (i = 0U; i < positions * layer->c_out; i++) {
        acc[i] = ttfs_unbias(raw[i], raw[(positions * layer->c_out) + (i / layer->c_out)]);
    }
    return sops;
}

/* 1x3x3 input, one 2x2 filter {1, 2; 3, 4}, stride 1, no padding: 2x2 output */
static void test_conv_valid(void)
{
    static const int32_t w[4] = { 1, 2, 3, 4 };                 /* [dy][dx][0][0] */
    static uint32_t weight[4];
    static const int32_t bias[1] = { 0 };
    static const uint8_t centre[9] = { 0U, 0U, 0U, 0U, 1U, 0U, 0U, 0U, 0U };   /* (1, 1) */
    static const uint8_t corner[9] = { 10U, 0U, 0U, 0U, 0U, 0U, 0U, 0U, 0U };  /* (0, 0) */
    struct ttfs_layer layer = { TTFS_CONV2D, weight, bias, never, NULL,
                                1U, 3U, 3U, 1U, 2U, 2U, 2U, 1U, 0U, 2U };
    int32_t acc[4 * 2];

    (void)pack(w, 4U, 1U, weight);
    /* out(oy, ox) uses weight[1 - oy][1 - ox]: every output sees the centre */
    CHECK_EQ(conv_pixels(&layer, centre, acc), 4U);
    CHECK_EQ(acc[0], 4);
    CHECK_EQ(acc[1], 3);
    CHECK_EQ(acc[2], 2);
    CHECK_EQ(acc[3], 1);
    /* only out(0, 0) covers the corner, with weight[0][0] */
    CHECK_EQ(conv_pixels(&layer, corner, acc), 1U);
    CHECK_EQ(acc[0], 10);
    CHECK_EQ(acc[1], 0);
    CHECK_EQ(acc[3], 0);
}

/* 1x3x3 input, 3x3 filter w[dy][dx] = 3*dy + dx + 1, stride 2, padding 1: 2x2 output;
   out(oy, ox) sees input (2*oy + dy - 1, 2*ox + dx - 1) */
static void test_conv_strided_padded(void)
{
    static const int32_t w[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    static uint32_t weight[9];
    static const int32_t bias[1] = { -1 };
    static const uint8_t centre[9] = { 0U, 0U, 0U, 0U, 1U, 0U, 0U, 0U, 0U }; /* dy in {2, 0} */
    static const uint8_t first[9] = { 1U, 0U, 0U, 0U, 0U, 0U, 0U, 0U, 0U }; /* out(0, 0) w[1][1] */
    static const uint8_t last[9] = { 0U, 0U, 0U, 0U, 0U, 0U, 0U, 0U, 2U };  /* out(1, 1) w[1][1] */
    struct ttfs_layer layer = { TTFS_CONV2D, weight, bias, never, NULL,
                                1U, 3U, 3U, 1U, 2U, 2U, 3U, 2U, 1U, 2U };
    int32_t acc[4 * 2];

    (void)pack(w, 9U, 1U, weight);
    CHECK_EQ(conv_pixels(&layer, centre, acc), 4U);
    CHECK_EQ(acc[0], 9 - 1);   /* dy = 2, dx = 2 */
    CHECK_EQ(acc[1], 7 - 1);   /* dy = 2, dx = 0 */
    CHECK_EQ(acc[2], 3 - 1);   /* dy = 0, dx = 2 */
    CHECK_EQ(acc[3], 1 - 1);   /* dy = 0, dx = 0 */
    CHECK_EQ(conv_pixels(&layer, first, acc), 1U);
    CHECK_EQ(acc[0], 5 - 1);
    CHECK_EQ(acc[3], -1);
    CHECK_EQ(conv_pixels(&layer, last, acc), 1U);
    CHECK_EQ(acc[3], 10 - 1);
    CHECK_EQ(acc[0], -1);
}

/* 2 input channels x 2 output channels, 1x1 kernel: a per-pixel 2x2 matrix
   W[c_out][c_in] = {1, 2; 3, 4}, stored [c_in][c_out] = {1, 3, 2, 4} */
static void test_conv_channels(void)
{
    static const int32_t w[4] = { 1, 3, 2, 4 };
    static uint32_t weight[2];
    static const int32_t bias[2] = { 0, 100 };
    static const uint8_t pixels[4] = { 0U, 5U, 7U, 0U };   /* (c0, x1) = 5, (c1, x0) = 7 */
    struct ttfs_layer layer = { TTFS_CONV2D, weight, bias, never, NULL,
                                2U, 1U, 2U, 2U, 1U, 2U, 1U, 1U, 0U, 1U };
    int32_t acc[4 + 2];                                    /* [x][c_out], then sums */

    (void)pack(w, 2U, 2U, weight);

    CHECK_EQ(conv_pixels(&layer, pixels, acc), 4U);
    CHECK_EQ(acc[0], 2 * 7);          /* x 0, c_out 0: W[0][1] * 7 */
    CHECK_EQ(acc[1], 100 + 4 * 7);    /* x 0, c_out 1 */
    CHECK_EQ(acc[2], 1 * 5);          /* x 1, c_out 0: W[0][0] * 5 */
    CHECK_EQ(acc[3], 100 + 3 * 5);
}
#endif

static uint32_t rng_state = 1U;

static uint32_t rng(uint32_t n)
{
    rng_state = (rng_state * 1103515245U) + 12345U;
    return (rng_state >> 16) % n;
}

/*
 * Every kernel size 1..4, stride 1..4 (also larger than the kernel), padding 0..k-1, on 2x?x?
 * spike-time and pixel inputs: the row-ring conv against the definition
 *   u[c][oy][ox] = bias[c] + sum over (c_in, dy, dx) inside the input of W * operand,
 * spike times, spike count and SOPs (per event: c_out x the output positions covering it).
 */
static void test_conv_sweep(void)
{
    enum { C_IN = 2, C_OUT = 3, MAX_HW = 9, MAX_OUT = 16, T = 5 };
    static const int32_t theta[T] = { 900, 400, 150, 40, 1 };
    static const uint16_t kernel[T] = { 40U, 20U, 10U, 5U, 0U };    /* kernel[4] = 0 */
    static int32_t wt[4 * 4 * C_IN * C_OUT];                         /* [dy][dx][c_in][c_out] */
    static uint32_t weight[4 * 4 * C_IN * C_OUT];                    /* packed rows of c_out */
    const int32_t w_max = (W_MAX < 20) ? W_MAX : 20;
    static int32_t bias[C_OUT];
    static ttfs_time_t times[C_IN * MAX_HW * MAX_HW];
    static uint8_t pixels[C_IN * MAX_HW * MAX_HW];
    static int32_t acc[4 * MAX_OUT * (C_OUT + 1)];
    static ttfs_time_t out[C_OUT * MAX_OUT * MAX_OUT];
    uint32_t k;
    uint32_t s;
    uint32_t p;

    for (k = 1U; k <= 4U; k++) {
        for (s = 1U; s <= 4U; s++) {
            for (p = 0U; p < k; p++) {
                uint32_t h = 4U + rng(6U);
                uint32_t w = 4U + rng(6U);
                uint32_t h_out = ((h + (2U * p) - k) / s) + 1U;
                uint32_t w_out = ((w + (2U * p) - k) / s) + 1U;
                struct ttfs_layer layer = { TTFS_CONV2D, weight, bias, theta, kernel,
                                            C_IN, 0U, 0U, C_OUT, 0U, 0U, 0U, 0U, 0U, 0U };
                struct ttfs_input in = { NULL, times, kernel, T };
                uint32_t use_pixels = (k + s + p) % 2U;
                uint32_t spikes = 0U;
                uint32_t sops = 0U;
                uint32_t expected_sops = 0U;
                uint32_t i;
                uint32_t c;
                uint32_t oy;
                uint32_t ox;

                layer.h_in = h;
                layer.w_in = w;
                layer.h_out = h_out;
                layer.w_out = w_out;
                layer.k = k;
                layer.stride = s;
                layer.padding = p;
                layer.rows = ((k + s - 1U) / s < h_out) ? (k + s - 1U) / s : h_out;
                for (i = 0U; i < k * k * C_IN * C_OUT; i++) {
                    wt[i] = (int32_t)rng((2U * (uint32_t)w_max) + 1U) - w_max;
                }
                (void)pack(wt, k * k * C_IN, C_OUT, weight);
                for (c = 0U; c < C_OUT; c++) {
                    bias[c] = (int32_t)rng(61U) - 30;
                }
                for (i = 0U; i < C_IN * h * w; i++) {
                    times[i] = (ttfs_time_t)((rng(2U) != 0U) ? T : rng(T));
                    pixels[i] = (uint8_t)((rng(2U) != 0U) ? 0U : rng(40U));
                }
                in.pixels = use_pixels ? pixels : NULL;
                CHECK_EQ(layer.rows * w_out * (C_OUT + 1) <= sizeof(acc) / sizeof(acc[0]), 1);
                CHECK_EQ(h_out <= MAX_OUT && w_out <= MAX_OUT, 1);
                spikes = ttfs_conv2d(&layer, &in, acc, out, &sops);
                for (c = 0U; c < C_OUT; c++) {
                    for (oy = 0U; oy < h_out; oy++) {
                        for (ox = 0U; ox < w_out; ox++) {
                            int32_t u = bias[c];
                            uint32_t dy;
                            uint32_t dx;
                            uint32_t ci;
                            for (ci = 0U; ci < C_IN; ci++) {
                                for (dy = 0U; dy < k; dy++) {
                                    for (dx = 0U; dx < k; dx++) {
                                        uint32_t y = (oy * s) + dy;
                                        uint32_t x = (ox * s) + dx;
                                        int32_t v;
                                        if (y < p || x < p || y - p >= h || x - p >= w) {
                                            continue;
                                        }
                                        i = (((ci * h) + (y - p)) * w) + (x - p);
                                        if (!ttfs_input_event(&in, i, &v)) {
                                            continue;
                                        }
                                        u += wt[((((dy * k) + dx) * C_IN + ci) * C_OUT) + c] * v;
                                        expected_sops += 1U;   /* c_out x positions in all */
                                    }
                                }
                            }
                            i = (((c * h_out) + oy) * w_out) + ox;
                            CHECK_EQ(out[i], ttfs_first_crossing(u, theta, T));
                            spikes -= (out[i] < T) ? 1U : 0U;
                        }
                    }
                }
                CHECK_EQ(spikes, 0U);
                CHECK_EQ(sops, expected_sops);
            }
        }
    }
}

static void test_fire(void)
{
    static const int32_t theta[4] = { 10, 6, 3, 1 };
    static const int32_t acc[3] = { 7, 0, 100 };
    ttfs_time_t times[3];

    CHECK_EQ(ttfs_fire(acc, 3U, theta, 4U, times), 2U);
    CHECK_EQ(times[0], 1U);
    CHECK_EQ(times[1], 4U);
    CHECK_EQ(times[2], 0U);
}

/* 1x2x5 times (the last column is cropped), 2x2 windows: earliest spike per window */
static void test_maxpool(void)
{
    static const ttfs_time_t in[10] = { 3U, 1U, 4U, 4U, 0U,
                                     2U, 4U, 4U, 4U, 0U };
    struct ttfs_layer layer = { TTFS_MAXPOOL2D, NULL, NULL, NULL, NULL,
                                1U, 2U, 5U, 1U, 1U, 2U, 2U, 0U, 0U, 0U };
    ttfs_time_t out[2];

    ttfs_maxpool2d(&layer, in, out);
    CHECK_EQ(out[0], 1U);
    CHECK_EQ(out[1], 4U);   /* all silent (T = 4) */
}

static void test_argmax(void)
{
    static const int32_t scores[4] = { 5, 7, 7, -1 };
    static const int32_t negative[2] = { -3, -2 };

    CHECK_EQ(ttfs_argmax(scores, 4U), 1);   /* ties: the lowest index */
    CHECK_EQ(ttfs_argmax(negative, 2U), 1);
}

#if TTFS_WEIGHT_BITS >= 3
/*
 * A whole network, real coding, T = 4: input 2 pixels -> dense 2 (theta {10, 6, 3, 1},
 * kernel {8, 4, 2, 1}) -> output 2. Input {5, 0}: one event (0, 5);
 * dense acc = {5, 10} -> times {2, 0}; output events (0, kernel[2] = 2), (1, kernel[0] = 8);
 * scores = {2, 8 - 5} = {2, 3} -> class 1. SOPs only from spikes: 2 events x 2 outputs.
 */
static void test_run(void)
{
    static const int32_t w1_rows[4] = { 1, 2, 1, -1 };       /* W1 = {1, 1; 2, -1}, rows W1.T */
    static uint32_t w1[2];
    static const int32_t b1[2] = { 0, 0 };
    static const int32_t theta[4] = { 10, 6, 3, 1 };
    static const uint16_t kernel[4] = { 8U, 4U, 2U, 1U };
    static const int32_t w2_rows[4] = { 1, 0, 0, 1 };
    static uint32_t w2[2];
    static const int32_t b2[2] = { 0, -5 };
    static const struct ttfs_layer layers[2] = {
        { TTFS_DENSE, w1, b1, theta, kernel, 2U, 1U, 1U, 2U, 1U, 1U, 0U, 0U, 0U, 0U },
        { TTFS_OUTPUT, w2, b2, NULL, NULL, 2U, 1U, 1U, 2U, 1U, 1U, 0U, 0U, 0U, 0U },
    };
    static int32_t acc[2];
    static ttfs_time_t times0[2];
    static ttfs_time_t times1[1];
    static const struct ttfs_net net = { 4U, 2U, layers, NULL, NULL, acc, { times0, times1 } };
    static const uint8_t input[2] = { 5U, 0U };
    int32_t scores[2];
    struct ttfs_stats stats;
    uint16_t trace[3] = { 99U, 99U, 99U };

    (void)pack(w1_rows, 2U, 2U, w1);
    (void)pack(w2_rows, 2U, 2U, w2);
    CHECK_EQ(ttfs_run(&net, input, scores, &stats, trace), 1);
    CHECK_EQ(scores[0], 2);
    CHECK_EQ(scores[1], 3);
    CHECK_EQ(stats.input_spikes, 0U);
    CHECK_EQ(stats.spikes[0], 2U);
    CHECK_EQ(stats.sops, 4U);
    CHECK_EQ(trace[0], 2U);
    CHECK_EQ(trace[1], 0U);
    CHECK_EQ(trace[2], 99U);    /* nothing written past the trace */
    CHECK_EQ(ttfs_run(&net, input, scores, NULL, NULL), 1);   /* stats and trace optional */
}

/*
 * `ttfs` coding, T = 2: 1x2x2 input -> maxpool 2x2 -> flatten -> output 1. Input times from a
 * table (byte >= 128 fires at 0, >= 64 at 1, else silent), input kernel {3, 1}.
 * Pixels {0, 70, 200, 0} -> times {2, 1, 0, 2}: 2 input spikes; pool -> 0;
 * output: one event (0, 3) -> score = 1 + 2 * 3 = 7; SOPs = 1 event x 1 output.
 */
static void test_run_ttfs_pool(void)
{
    uint16_t table[256];
    static const uint16_t input_kernel[2] = { 3U, 1U };
    static const int32_t w_rows[1] = { 2 };
    static uint32_t w[1];
    static const int32_t b[1] = { 1 };
    static const struct ttfs_layer layers[3] = {
        { TTFS_MAXPOOL2D, NULL, NULL, NULL, NULL, 1U, 2U, 2U, 1U, 1U, 1U, 2U, 0U, 0U, 0U },
        { TTFS_FLATTEN, NULL, NULL, NULL, NULL, 1U, 1U, 1U, 1U, 1U, 1U, 0U, 0U, 0U, 0U },
        { TTFS_OUTPUT, w, b, NULL, NULL, 1U, 1U, 1U, 1U, 1U, 1U, 0U, 0U, 0U, 0U },
    };
    static int32_t acc[1];
    static ttfs_time_t times0[4];
    static ttfs_time_t times1[1];
    struct ttfs_net net = { 2U, 3U, layers, NULL, input_kernel, acc, { times0, times1 } };
    static const uint8_t input[4] = { 0U, 70U, 200U, 0U };
    int32_t score;
    struct ttfs_stats stats;
    uint16_t trace[5];
    uint32_t i;

    for (i = 0U; i < 256U; i++) {
        table[i] = (uint16_t)((i >= 128U) ? 0U : ((i >= 64U) ? 1U : 2U));
    }
    net.input_times = table;
    (void)pack(w_rows, 1U, 1U, w);
    CHECK_EQ(ttfs_run(&net, input, &score, &stats, trace), 0);
    CHECK_EQ(score, 7);
    CHECK_EQ(stats.input_spikes, 2U);
    CHECK_EQ(stats.sops, 1U);
    CHECK_EQ(trace[0], 2U);
    CHECK_EQ(trace[1], 1U);
    CHECK_EQ(trace[2], 0U);
    CHECK_EQ(trace[3], 2U);
    CHECK_EQ(trace[4], 0U);    /* the pool */
}
#endif

int main(void)
{
    test_first_crossing();
    test_first_crossing_flat();
    test_input_events();
    test_encode_input();
    test_packed_weights();
#if TTFS_WEIGHT_BITS >= 5
    test_dense();
    test_conv_valid();
    test_conv_strided_padded();
    test_conv_channels();
#endif
    test_conv_sweep();
    test_fire();
    test_maxpool();
    test_argmax();
#if TTFS_WEIGHT_BITS >= 3
    test_run();
    test_run_ttfs_pool();
#endif
    printf("%d failures (%u-bit weights%s)\n", failures, (unsigned)TTFS_WEIGHT_BITS,
           TTFS_MUL_TABLE ? ", product tables" : "");
    return failures;
}
