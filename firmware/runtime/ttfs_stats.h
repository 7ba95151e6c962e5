/*
 * ttfs_stats.h -- the small public part of the TTFS runtime that a user's files need to call a
 * generated model: `struct ttfs_stats` and its capacity. `<model>_model.h` includes only this;
 * the runtime itself (ttfs.h) is included by `<model>_model.c` alone.
 *
 * TTFS_MAX_LAYERS (default 16): capacity of `struct ttfs_stats` in spiking layers. If a project
 * changes it, define it project-wide (every file that includes this header must agree).
 */
#ifndef TTFS_STATS_H
#define TTFS_STATS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef TTFS_MAX_LAYERS
#define TTFS_MAX_LAYERS 16U
#endif

/**
 * Activity of one inference, counted exactly as the SDK's golden simulator (sdk/golden.py)
 * counts it:
 *   input_spikes  `ttfs` input coding: input neurons that fired (pixel bytes with a spike
 *                 time < T); 0 under `real` coding, where pixels are operands, not spikes.
 *   spikes[l]     neurons of the l-th spiking layer (dense or conv2d, in network order) that
 *                 fired; entries past the model's number of spiking layers are 0.
 *   sops          synaptic operations caused by spikes: sum over every spike (input spikes
 *                 under `ttfs` coding included; pixel operands not) of the spiking neuron's
 *                 structural fan-out (dense: n_out; conv2d: c_out x output positions covering it).
 */
struct ttfs_stats {
    uint32_t input_spikes;
    uint32_t spikes[TTFS_MAX_LAYERS];
    uint32_t sops;
};

#ifdef __cplusplus
}
#endif

#endif /* TTFS_STATS_H */
