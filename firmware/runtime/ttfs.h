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
 * Every weighted layer consumes the event list of the layer before it, so the work grows with
 * the number of spikes, not with the number of synapses. Max pooling keeps the earliest spike of
 * each window; flatten leaves the C-order spike times as they are.
 *
 * A generated model file (`<model>_model.c`) holds the weights, tables and the layer sequence as
 * `static const` data plus statically sized scratch buffers, and calls `ttfs_run`. No heap, no
 * floating point, no recursion; the scratch buffers make one model non-reentrant.
 *
 * Configuration (define before including this header):
 *   TTFS_WEIGHT_T    integer type of the weights (default int8_t; int16_t for 9..16-bit weights).
 *                    A generated model file defines it; other translation units need not.
 *   TTFS_MAX_LAYERS  capacity of `struct ttfs_stats` in spiking layers (default 16).
 */
#ifndef TTFS_H
#define TTFS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef TTFS_WEIGHT_T
#define TTFS_WEIGHT_T int8_t
#endif

#ifndef TTFS_MAX_LAYERS
#define TTFS_MAX_LAYERS 16U
#endif

typedef TTFS_WEIGHT_T ttfs_weight_t;

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
 */
struct ttfs_layer {
    enum ttfs_kind kind;
    const ttfs_weight_t *weight; /* dense, output: [n_out][n_in]; conv2d: [c_out][c_in][k][k] */
    const int32_t *bias;         /* [c_out] */
    const int32_t *theta;        /* [T], non-increasing, >= 1 */
    const uint16_t *kernel;      /* [T], non-increasing */
    uint32_t c_in, h_in, w_in;
    uint32_t c_out, h_out, w_out;
    uint32_t k;                  /* conv2d: kernel size; maxpool2d: window size (= stride) */
    uint32_t stride;             /* conv2d */
    uint32_t padding;            /* conv2d: zero padding on every side */
};

/** An input event: the flat C-order index of an input that spiked, and its operand. */
struct ttfs_event {
    uint32_t index;
    int32_t operand;
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
    int32_t *acc;                     /* [largest output of a dense or conv2d layer] */
    struct ttfs_event *events;        /* [largest input of a weighted layer] */
    uint16_t *times[2];               /* spike times, used alternately (see ttfs_run) */
};

/** Activity of one inference, as `sdk.golden` counts it. */
struct ttfs_stats {
    uint32_t input_spikes;            /* `ttfs` coding: input neurons that fired; else 0 */
    uint32_t spikes[TTFS_MAX_LAYERS]; /* neurons that fired, per spiking layer in order */
    uint32_t sops;                    /* synaptic operations: spikes x structural fan-out */
};

static inline uint32_t ttfs_size_in(const struct ttfs_layer *layer)
{
    return layer->c_in * layer->h_in * layer->w_in;
}

static inline uint32_t ttfs_size_out(const struct ttfs_layer *layer)
{
    return layer->c_out * layer->h_out * layer->w_out;
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

/** Events of the non-zero pixel bytes (`real` input coding); returns their number. */
static inline uint32_t ttfs_events_from_pixels(const uint8_t *pixels, uint32_t n,
                                               struct ttfs_event *events)
{
    uint32_t count = 0U;
    uint32_t i;

    for (i = 0U; i < n; i++) {
        if (pixels[i] != 0U) {
            events[count].index = i;
            events[count].operand = (int32_t)pixels[i];
            count++;
        }
    }
    return count;
}

/** Events of the inputs that spiked (t < T), operand kernel[t]; returns their number. */
static inline uint32_t ttfs_events_from_times(const uint16_t *times, uint32_t n,
                                              const uint16_t *kernel, uint32_t T,
                                              struct ttfs_event *events)
{
    uint32_t count = 0U;
    uint32_t i;

    for (i = 0U; i < n; i++) {
        if (times[i] < T) {
            events[count].index = i;
            events[count].operand = (int32_t)kernel[times[i]];
            count++;
        }
    }
    return count;
}

/** `ttfs` input coding: times[i] = input_times[pixel i]; returns the number of input spikes. */
static inline uint32_t ttfs_encode_input(const uint8_t *pixels, uint32_t n,
                                         const uint16_t *input_times, uint32_t T,
                                         uint16_t *times)
{
    uint32_t spikes = 0U;
    uint32_t i;

    for (i = 0U; i < n; i++) {
        times[i] = input_times[pixels[i]];
        if (times[i] < T) {
            spikes++;
        }
    }
    return spikes;
}

/**
 * Dense (or output) layer: acc[j] = bias[j] + sum over events of weight[j][index] * operand.
 * Each output gathers its weights at the event indices; returns the SOPs (events x n_out).
 */
static inline uint32_t ttfs_dense_integrate(const struct ttfs_layer *layer,
                                            const struct ttfs_event *events, uint32_t n_events,
                                            int32_t *acc)
{
    uint32_t n_in = ttfs_size_in(layer);
    uint32_t n_out = ttfs_size_out(layer);
    uint32_t j;
    uint32_t e;

    for (j = 0U; j < n_out; j++) {
        const ttfs_weight_t *row = &layer->weight[j * n_in];
        int32_t sum = layer->bias[j];
        for (e = 0U; e < n_events; e++) {
            sum += (int32_t)row[events[e].index] * events[e].operand;
        }
        acc[j] = sum;
    }
    return n_events * n_out;
}

/**
 * Output positions [*lo, *hi) along one axis whose receptive field covers input position `pos`:
 * o with 0 <= pos + padding - o * stride < k and 0 <= o < n_out.
 */
static inline void ttfs_conv_span(uint32_t pos, uint32_t k, uint32_t stride, uint32_t padding,
                                  uint32_t n_out, uint32_t *lo, uint32_t *hi)
{
    uint32_t p = pos + padding;
    uint32_t last = (p / stride) + 1U;

    *lo = (p >= k) ? ((p - k) / stride) + 1U : 0U;
    *hi = (last < n_out) ? last : n_out;
    if (*lo > *hi) {
        *lo = *hi;
    }
}

/**
 * Conv2d layer: acc[c][y][x] = bias[c] + sum over events of the weights that connect them.
 * Each event scatters its operand into the output positions it covers, for every output
 * channel. Returns the SOPs: per event, c_out x the number of covered positions.
 */
static inline uint32_t ttfs_conv2d_integrate(const struct ttfs_layer *layer,
                                             const struct ttfs_event *events, uint32_t n_events,
                                             int32_t *acc)
{
    uint32_t plane = layer->h_out * layer->w_out;
    uint32_t k = layer->k;
    uint32_t sops = 0U;
    uint32_t c;
    uint32_t i;
    uint32_t e;

    for (c = 0U; c < layer->c_out; c++) {
        for (i = 0U; i < plane; i++) {
            acc[(c * plane) + i] = layer->bias[c];
        }
    }
    for (e = 0U; e < n_events; e++) {
        uint32_t c_in = events[e].index / (layer->h_in * layer->w_in);
        uint32_t y = (events[e].index / layer->w_in) % layer->h_in;
        uint32_t x = events[e].index % layer->w_in;
        int32_t operand = events[e].operand;
        uint32_t y_lo;
        uint32_t y_hi;
        uint32_t x_lo;
        uint32_t x_hi;

        ttfs_conv_span(y, k, layer->stride, layer->padding, layer->h_out, &y_lo, &y_hi);
        ttfs_conv_span(x, k, layer->stride, layer->padding, layer->w_out, &x_lo, &x_hi);
        sops += layer->c_out * (y_hi - y_lo) * (x_hi - x_lo);
        for (c = 0U; c < layer->c_out; c++) {
            const ttfs_weight_t *w = &layer->weight[((c * layer->c_in) + c_in) * k * k];
            int32_t *out = &acc[c * plane];
            uint32_t oy;
            uint32_t ox;
            for (oy = y_lo; oy < y_hi; oy++) {
                const ttfs_weight_t *w_row = &w[(y + layer->padding - (oy * layer->stride)) * k];
                for (ox = x_lo; ox < x_hi; ox++) {
                    out[(oy * layer->w_out) + ox] +=
                        (int32_t)w_row[x + layer->padding - (ox * layer->stride)] * operand;
                }
            }
        }
    }
    return sops;
}

/** Spike times of n neurons with membrane potentials acc; returns how many fired. */
static inline uint32_t ttfs_fire(const int32_t *acc, uint32_t n, const int32_t *theta,
                                 uint32_t T, uint16_t *times)
{
    uint32_t spikes = 0U;
    uint32_t i;

    for (i = 0U; i < n; i++) {
        times[i] = (uint16_t)ttfs_first_crossing(acc[i], theta, T);
        if (times[i] < T) {
            spikes++;
        }
    }
    return spikes;
}

/** Max pooling on spike times: the earliest spike of each k x k window (stride k). */
static inline void ttfs_maxpool2d(const struct ttfs_layer *layer, const uint16_t *in,
                                  uint16_t *out)
{
    uint32_t c;
    uint32_t oy;
    uint32_t ox;
    uint32_t dy;
    uint32_t dx;

    for (c = 0U; c < layer->c_out; c++) {
        const uint16_t *plane = &in[c * layer->h_in * layer->w_in];
        for (oy = 0U; oy < layer->h_out; oy++) {
            for (ox = 0U; ox < layer->w_out; ox++) {
                const uint16_t *window = &plane[(oy * layer->k * layer->w_in) + (ox * layer->k)];
                uint16_t earliest = window[0];
                for (dy = 0U; dy < layer->k; dy++) {
                    for (dx = 0U; dx < layer->k; dx++) {
                        uint16_t t = window[(dy * layer->w_in) + dx];
                        if (t < earliest) {
                            earliest = t;
                        }
                    }
                }
                out[(((c * layer->h_out) + oy) * layer->w_out) + ox] = earliest;
            }
        }
    }
}

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
static inline uint16_t *ttfs_trace_append(uint16_t *trace, const uint16_t *times, uint32_t n)
{
    uint32_t i;

    if (trace == NULL) {
        return NULL;
    }
    for (i = 0U; i < n; i++) {
        trace[i] = times[i];
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
 * encoder) that produces times writes the buffer the previous one did not.
 */
static inline int ttfs_run(const struct ttfs_net *net, const uint8_t *input, int32_t *scores,
                           struct ttfs_stats *stats, uint16_t *trace)
{
    struct ttfs_stats counts = {0U, {0U}, 0U};
    const uint16_t *times = NULL;      /* spike times of the current layer; NULL while pixels */
    const uint16_t *kernel = net->input_kernel;
    uint32_t next = 0U;
    uint32_t spiking = 0U;
    uint32_t i;
    int result = 0;

    if (net->input_times != NULL) {
        uint32_t n = ttfs_size_in(&net->layers[0]);
        counts.input_spikes = ttfs_encode_input(input, n, net->input_times, net->T,
                                                net->times[next]);
        times = net->times[next];
        next ^= 1U;
        trace = ttfs_trace_append(trace, times, n);
    }
    for (i = 0U; i < net->n_layers; i++) {
        const struct ttfs_layer *layer = &net->layers[i];
        uint32_t n_in = ttfs_size_in(layer);
        uint32_t n_out = ttfs_size_out(layer);
        uint16_t *out = net->times[next];

        if (layer->kind == TTFS_FLATTEN) {
            continue;
        }
        if (layer->kind == TTFS_MAXPOOL2D) {
            ttfs_maxpool2d(layer, times, out);
        } else {
            int32_t *acc = (layer->kind == TTFS_OUTPUT) ? scores : net->acc;
            uint32_t n_events;
            uint32_t sops;
            if (times == NULL) {
                n_events = ttfs_events_from_pixels(input, n_in, net->events);
            } else {
                n_events = ttfs_events_from_times(times, n_in, kernel, net->T, net->events);
            }
            if (layer->kind == TTFS_CONV2D) {
                sops = ttfs_conv2d_integrate(layer, net->events, n_events, acc);
            } else {
                sops = ttfs_dense_integrate(layer, net->events, n_events, acc);
            }
            if (times != NULL) {
                counts.sops += sops;
            }
            if (layer->kind == TTFS_OUTPUT) {
                result = ttfs_argmax(scores, n_out);
                break;
            }
            counts.spikes[spiking] = ttfs_fire(acc, n_out, layer->theta, net->T, out);
            spiking++;
            kernel = layer->kernel;
        }
        times = out;
        next ^= 1U;
        trace = ttfs_trace_append(trace, times, n_out);
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
