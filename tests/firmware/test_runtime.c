/*
 * Hand-checked cases of the C runtime (firmware/runtime/ttfs.h), run by tests/test_mcu_runtime.py
 * with strict warnings and again under ASan/UBSan, for int8_t and int16_t weights.
 * Prints one line per failed check and exits with the number of failures.
 */
#include <stdio.h>

#include "ttfs.h"

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

static void test_events(void)
{
    static const uint8_t pixels[4] = { 0U, 7U, 0U, 255U };
    static const uint16_t times[4] = { 2U, 4U, 0U, 4U };      /* T = 4: inputs 1, 3 silent */
    static const uint16_t kernel[4] = { 100U, 50U, 25U, 0U };
    static const uint16_t late[2] = { 3U, 4U };              /* kernel[3] = 0: still an event */
    struct ttfs_event events[4];

    CHECK_EQ(ttfs_events_from_pixels(pixels, 4U, events), 2U);
    CHECK_EQ(events[0].index, 1U);
    CHECK_EQ(events[0].operand, 7);
    CHECK_EQ(events[1].index, 3U);
    CHECK_EQ(events[1].operand, 255);

    CHECK_EQ(ttfs_events_from_times(times, 4U, kernel, 4U, events), 2U);
    CHECK_EQ(events[0].index, 0U);
    CHECK_EQ(events[0].operand, 25);
    CHECK_EQ(events[1].index, 2U);
    CHECK_EQ(events[1].operand, 100);

    CHECK_EQ(ttfs_events_from_times(late, 2U, kernel, 4U, events), 1U);
    CHECK_EQ(events[0].operand, 0);
}

static void test_encode_input(void)
{
    uint16_t table[256];
    static const uint8_t pixels[3] = { 0U, 128U, 255U };
    uint16_t times[3];
    uint32_t i;

    for (i = 0U; i < 256U; i++) {
        table[i] = (uint16_t)((i < 100U) ? 4U : (255U - i) / 64U);   /* dark pixels: silent */
    }
    CHECK_EQ(ttfs_encode_input(pixels, 3U, table, 4U, times), 2U);
    CHECK_EQ(times[0], 4U);
    CHECK_EQ(times[1], 1U);   /* (255 - 128) / 64 */
    CHECK_EQ(times[2], 0U);
}

/* acc_j = bias_j + sum_e weight[j][index_e] * operand_e */
static void test_dense(void)
{
    static const ttfs_weight_t weight[6] = { 1, -2, 3, -4, 5, -6 };
    static const int32_t bias[2] = { 10, -10 };
    static const struct ttfs_event events[2] = { { 0U, 2 }, { 2U, 1 } };
    struct ttfs_layer layer = { TTFS_DENSE, weight, bias, NULL, NULL,
                                3U, 1U, 1U, 2U, 1U, 1U, 0U, 0U, 0U };
    int32_t acc[2];

    CHECK_EQ(ttfs_dense_integrate(&layer, events, 2U, acc), 4U);   /* 2 events x 2 outputs */
    CHECK_EQ(acc[0], 15);      /* 10 + 1*2 + 3*1 */
    CHECK_EQ(acc[1], -24);     /* -10 - 4*2 - 6*1 */
    CHECK_EQ(ttfs_dense_integrate(&layer, events, 0U, acc), 0U);
    CHECK_EQ(acc[0], 10);      /* no events: the bias */
}

/* 1x3x3 input, one 2x2 filter {1, 2; 3, 4}, stride 1, no padding: 2x2 output */
static void test_conv_valid(void)
{
    static const ttfs_weight_t weight[4] = { 1, 2, 3, 4 };
    static const int32_t bias[1] = { 0 };
    static const struct ttfs_event centre[1] = { { 4U, 1 } };    /* (y, x) = (1, 1) */
    static const struct ttfs_event corner[1] = { { 0U, 10 } };   /* (0, 0) */
    struct ttfs_layer layer = { TTFS_CONV2D, weight, bias, NULL, NULL,
                                1U, 3U, 3U, 1U, 2U, 2U, 2U, 1U, 0U };
    int32_t acc[4];

    /* out(oy, ox) uses weight[1 - oy][1 - ox]: every output sees the centre */
    CHECK_EQ(ttfs_conv2d_integrate(&layer, centre, 1U, acc), 4U);
    CHECK_EQ(acc[0], 4);
    CHECK_EQ(acc[1], 3);
    CHECK_EQ(acc[2], 2);
    CHECK_EQ(acc[3], 1);
    /* only out(0, 0) covers the corner, with weight[0][0] */
    CHECK_EQ(ttfs_conv2d_integrate(&layer, corner, 1U, acc), 1U);
    CHECK_EQ(acc[0], 10);
    CHECK_EQ(acc[1], 0);
    CHECK_EQ(acc[3], 0);
}

/* 1x3x3 input, 3x3 filter w[dy][dx] = 3*dy + dx + 1, stride 2, padding 1: 2x2 output;
   out(oy, ox) sees input (2*oy + dy - 1, 2*ox + dx - 1) */
static void test_conv_strided_padded(void)
{
    static const ttfs_weight_t weight[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    static const int32_t bias[1] = { -1 };
    static const struct ttfs_event centre[1] = { { 4U, 1 } };   /* (1, 1): dy in {2, 0} */
    static const struct ttfs_event first[1] = { { 0U, 1 } };    /* (0, 0): out(0, 0), w[1][1] */
    static const struct ttfs_event last[1] = { { 8U, 2 } };     /* (2, 2): out(1, 1), w[1][1] */
    struct ttfs_layer layer = { TTFS_CONV2D, weight, bias, NULL, NULL,
                                1U, 3U, 3U, 1U, 2U, 2U, 3U, 2U, 1U };
    int32_t acc[4];

    CHECK_EQ(ttfs_conv2d_integrate(&layer, centre, 1U, acc), 4U);
    CHECK_EQ(acc[0], 9 - 1);   /* dy = 2, dx = 2 */
    CHECK_EQ(acc[1], 7 - 1);   /* dy = 2, dx = 0 */
    CHECK_EQ(acc[2], 3 - 1);   /* dy = 0, dx = 2 */
    CHECK_EQ(acc[3], 1 - 1);   /* dy = 0, dx = 0 */
    CHECK_EQ(ttfs_conv2d_integrate(&layer, first, 1U, acc), 1U);
    CHECK_EQ(acc[0], 5 - 1);
    CHECK_EQ(acc[3], -1);
    CHECK_EQ(ttfs_conv2d_integrate(&layer, last, 1U, acc), 1U);
    CHECK_EQ(acc[3], 10 - 1);
    CHECK_EQ(acc[0], -1);
}

/* 2 input channels x 2 output channels, 1x1 kernel: a per-pixel 2x2 matrix */
static void test_conv_channels(void)
{
    static const ttfs_weight_t weight[4] = { 1, 2, 3, 4 };    /* [c_out][c_in] */
    static const int32_t bias[2] = { 0, 100 };
    static const struct ttfs_event events[2] = { { 1U, 5 }, { 2U, 7 } };  /* (c0,x1), (c1,x0) */
    struct ttfs_layer layer = { TTFS_CONV2D, weight, bias, NULL, NULL,
                                2U, 1U, 2U, 2U, 1U, 2U, 1U, 1U, 0U };
    int32_t acc[4];

    CHECK_EQ(ttfs_conv2d_integrate(&layer, events, 2U, acc), 4U);
    CHECK_EQ(acc[0], 2 * 7);          /* c_out 0, x 0: weight[0][1] * 7 */
    CHECK_EQ(acc[1], 1 * 5);          /* c_out 0, x 1: weight[0][0] * 5 */
    CHECK_EQ(acc[2], 100 + 4 * 7);
    CHECK_EQ(acc[3], 100 + 3 * 5);
}

static void test_fire(void)
{
    static const int32_t theta[4] = { 10, 6, 3, 1 };
    static const int32_t acc[3] = { 7, 0, 100 };
    uint16_t times[3];

    CHECK_EQ(ttfs_fire(acc, 3U, theta, 4U, times), 2U);
    CHECK_EQ(times[0], 1U);
    CHECK_EQ(times[1], 4U);
    CHECK_EQ(times[2], 0U);
}

/* 1x2x5 times (the last column is cropped), 2x2 windows: earliest spike per window */
static void test_maxpool(void)
{
    static const uint16_t in[10] = { 3U, 1U, 4U, 4U, 0U,
                                     2U, 4U, 4U, 4U, 0U };
    struct ttfs_layer layer = { TTFS_MAXPOOL2D, NULL, NULL, NULL, NULL,
                                1U, 2U, 5U, 1U, 1U, 2U, 2U, 0U, 0U };
    uint16_t out[2];

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

/*
 * A whole network, real coding, T = 4: input 2 pixels -> dense 2 (theta {10, 6, 3, 1},
 * kernel {8, 4, 2, 1}) -> output 2. Input {5, 0}: one event (0, 5);
 * dense acc = {5, 10} -> times {2, 0}; output events (0, kernel[2] = 2), (1, kernel[0] = 8);
 * scores = {2, 8 - 5} = {2, 3} -> class 1. SOPs only from spikes: 2 events x 2 outputs.
 */
static void test_run(void)
{
    static const ttfs_weight_t w1[4] = { 1, 1, 2, -1 };
    static const int32_t b1[2] = { 0, 0 };
    static const int32_t theta[4] = { 10, 6, 3, 1 };
    static const uint16_t kernel[4] = { 8U, 4U, 2U, 1U };
    static const ttfs_weight_t w2[4] = { 1, 0, 0, 1 };
    static const int32_t b2[2] = { 0, -5 };
    static const struct ttfs_layer layers[2] = {
        { TTFS_DENSE, w1, b1, theta, kernel, 2U, 1U, 1U, 2U, 1U, 1U, 0U, 0U, 0U },
        { TTFS_OUTPUT, w2, b2, NULL, NULL, 2U, 1U, 1U, 2U, 1U, 1U, 0U, 0U, 0U },
    };
    static int32_t acc[2];
    static struct ttfs_event events[2];
    static uint16_t times0[2];
    static uint16_t times1[1];
    static const struct ttfs_net net = { 4U, 2U, layers, NULL, NULL, acc, events,
                                         { times0, times1 } };
    static const uint8_t input[2] = { 5U, 0U };
    int32_t scores[2];
    struct ttfs_stats stats;
    uint16_t trace[3] = { 99U, 99U, 99U };

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
    static const ttfs_weight_t w[1] = { 2 };
    static const int32_t b[1] = { 1 };
    static const struct ttfs_layer layers[3] = {
        { TTFS_MAXPOOL2D, NULL, NULL, NULL, NULL, 1U, 2U, 2U, 1U, 1U, 1U, 2U, 0U, 0U },
        { TTFS_FLATTEN, NULL, NULL, NULL, NULL, 1U, 1U, 1U, 1U, 1U, 1U, 0U, 0U, 0U },
        { TTFS_OUTPUT, w, b, NULL, NULL, 1U, 1U, 1U, 1U, 1U, 1U, 0U, 0U, 0U },
    };
    static int32_t acc[1];
    static struct ttfs_event events[1];
    static uint16_t times0[4];
    static uint16_t times1[1];
    struct ttfs_net net = { 2U, 3U, layers, NULL, input_kernel, acc, events,
                            { times0, times1 } };
    static const uint8_t input[4] = { 0U, 70U, 200U, 0U };
    int32_t score;
    struct ttfs_stats stats;
    uint16_t trace[5];
    uint32_t i;

    for (i = 0U; i < 256U; i++) {
        table[i] = (uint16_t)((i >= 128U) ? 0U : ((i >= 64U) ? 1U : 2U));
    }
    net.input_times = table;
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

int main(void)
{
    test_first_crossing();
    test_first_crossing_flat();
    test_events();
    test_encode_input();
    test_dense();
    test_conv_valid();
    test_conv_strided_padded();
    test_conv_channels();
    test_fire();
    test_maxpool();
    test_argmax();
    test_run();
    test_run_ttfs_pool();
    printf("%d failures (weights of %u bytes)\n", failures, (unsigned)sizeof(ttfs_weight_t));
    return failures;
}
