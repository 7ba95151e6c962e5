"""Training time per epoch of a TTFS net against its ReLU twin, measured interleaved.

    python bench/speed.py --dataset mnist5k --arch cnn [--pairs 3] [--option KEY=VALUE ...]

One warm-up epoch each, then `--pairs` alternating one-epoch `ttfs.sdk.train.fit` calls of the ReLU
twin (`--method relu`) and the SNN (`sr+tr+tkbn` with every part active from epoch 0). Prints
the seconds of each call, the ratio of the medians and the load average, so that a ratio can be
repeated and compared on a shared machine.
"""

from __future__ import annotations

import argparse
import ast
import os
import statistics
import time

from ttfs.sdk import train
from ttfs.sdk.data import load_dataset


def epoch_seconds(dataset, method: str, options: dict) -> float:
    """Wall seconds of one `fit` epoch of `method`."""
    cfg = train.TrainConfig(dataset=dataset.name, method=method, epochs=1, sr_epochs=0,
                            tk_epoch=0, **options)
    start = time.perf_counter()
    train.fit(cfg, dataset, quiet=True)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--arch", default="cnn")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other TrainConfig field, e.g. batch_size=32 (a Python literal)")
    args = p.parse_args()
    options = {"arch": args.arch}
    for item in args.option:
        key, _, value = item.partition("=")
        options[key] = ast.literal_eval(value)
    dataset = load_dataset(args.dataset)
    for method in ("relu", "sr+tr+tkbn"):
        epoch_seconds(dataset, method, options)          # warm-up
    relu, snn = [], []
    for _ in range(args.pairs):
        relu.append(epoch_seconds(dataset, "relu", options))
        snn.append(epoch_seconds(dataset, "sr+tr+tkbn", options))
    ratio = statistics.median(snn) / statistics.median(relu)
    print(f"{args.dataset} {args.arch}: relu {[round(s, 2) for s in relu]} s, sr+tr+tkbn "
          f"{[round(s, 2) for s in snn]} s, ratio of medians {ratio:.2f}x, load average "
          f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
