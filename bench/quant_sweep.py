"""Float SNN vs integer golden accuracy for weight_bits x kernel_bits in {4, 6, 8}^2.

    python bench/quant_sweep.py [RUN_DIR] [--limit N]

RUN_DIR defaults to runs/mlp (train it with `ttfs-train --dataset mnist5k --arch mlp --out
runs/mlp`). Prints one row per width pair: accuracies in %, the gap integer - float in
percentage points, class agreement and spikes per hidden neuron.
"""

from __future__ import annotations

import argparse
import time

from ttfs.sdk import report
from ttfs.sdk.floatnet import load_float_network
from ttfs.sdk.quantize import quantize

WIDTHS = (4, 6, 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", default="runs/mlp")
    parser.add_argument("--limit", type=int, default=None, help="first N test images only")
    args = parser.parse_args()
    fnet = load_float_network(args.run_dir)
    images, labels = report.run_test_images(args.run_dir, args.limit)
    start = time.perf_counter()
    fres = report.float_result(fnet, images, labels)
    print(f"{args.run_dir}: {len(images)} test images; float SNN {100 * fres.accuracy:.2f} %, "
          f"{fres.spikes_per_neuron:.4f} spikes per hidden neuron")
    print(f"{'w_bits':>6} {'k_bits':>6} {'float %':>8} {'int %':>8} {'gap pp':>7} "
          f"{'agree %':>8} {'spikes/n':>9}")
    for weight_bits in WIDTHS:
        for kernel_bits in WIDTHS:
            net = quantize(fnet, weight_bits=weight_bits, kernel_bits=kernel_bits)
            cmp = report.compare(fnet, net, images, labels, float_side=fres)
            print(f"{weight_bits:>6} {kernel_bits:>6} {100 * fres.accuracy:>8.2f} "
                  f"{100 * cmp.integer.accuracy:>8.2f} "
                  f"{100 * (cmp.integer.accuracy - fres.accuracy):>+7.2f} "
                  f"{100 * cmp.agreement:>8.2f} {cmp.integer.spikes_per_neuron:>9.4f}")
    print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
