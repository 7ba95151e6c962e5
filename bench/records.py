"""Record runs: float and integer (deployed) accuracy, spikes, SOPs and training speed.

    python bench/records.py [--only yinyang-mlp mnist5k-cnn ...] [--out runs/records]
                            [--results docs/records.md] [--speed-epochs 2]

Each record trains one `ttfs-train` run (the config below), quantizes it with the default
8-bit quantizer (`ttfs.sdk.quantize`, the deployed model; QAT runs keep their `weight_bits`) and
runs the integer golden simulator (`ttfs.sdk.golden`) on the whole test set. Reported per record:
float-SNN and integer test accuracy, integer spikes per hidden neuron and SOPs per image, the
time per epoch against the ReLU twin (same net and recipe, `--method relu`) measured
interleaved (`epoch_times`: relu and SNN epochs alternate, `--speed-epochs` each, on the
record's data; the median is reported), the wall time of the record run and its command, and
whether the aim is met. Records whose aim compares with the ReLU twin train the twin fully.

Records run in the order given (shortest first); each appends its row to `--json` as it
finishes, so an interrupted bench keeps the finished rows, and the table is rewritten from
that file after every record.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ttfs.sdk import golden
from ttfs.sdk.data import load_dataset
from ttfs.sdk.floatnet import load_float_network
from ttfs.sdk.quantize import quantize
from ttfs.sdk.train import TrainConfig, fit, train


@dataclass(frozen=True)
class Record:
    """One record: the run's options, the aim (integer accuracy at most `max_spikes` spikes per
    hidden neuron; `vs_twin`: at least the ReLU twin's accuracy) and its wording."""

    config: dict
    aim: str
    min_accuracy: float | None = None
    max_spikes: float | None = None
    vs_twin: bool = False
    note: str = ""
    extra: dict = field(default_factory=dict)


RECORDS = {
    "yinyang-mlp": Record(
        dict(dataset="yinyang", arch="d128,d64", epochs=150, batch_size=32, lr=3e-3,
             lr_schedule="cosine", T=64, tau0=16.0),
        aim="integer >= 97 %", min_accuracy=0.97),
    "mnist5k-cnn": Record(
        dict(dataset="mnist5k", arch="cnn", epochs=40, lambda_bn=0.2, augment=1,
             max_spikes=0.10),
        aim=">= ReLU twin at <= 0.10 spikes/hidden neuron", max_spikes=0.10, vs_twin=True),
    "mnist-mlp": Record(
        dict(dataset="mnist", arch="d340", epochs=12, lr_schedule="cosine", augment=1),
        aim="integer >= 98.0 % (784-340-10)", min_accuracy=0.98),
    "fashion-mnist-cnn": Record(
        dict(dataset="fashion-mnist", arch="cnn", epochs=8, lr_schedule="cosine", augment=1),
        aim="integer >= 93.2 %", min_accuracy=0.932),
    "mnist-cnn": Record(
        dict(dataset="mnist", arch="cnn", epochs=10, lambda_bn=0.05, augment=1,
             max_spikes=0.10),
        aim="integer >= 99.55 % at <= 0.10 spikes/hidden neuron", min_accuracy=0.9955,
        max_spikes=0.10),
}


def command(name: str, config: dict, out: Path) -> str:
    """The ttfs-train command line of a record's run."""
    args = ["ttfs-train"]
    for key, value in config.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return shlex.join(args + ["--out", str(out / name)])


def integer_metrics(run_dir: Path, dataset) -> dict:
    """Integer (golden) accuracy, spikes per hidden neuron and SOPs on the whole test set."""
    net = quantize(load_float_network(run_dir))
    trace = golden.run(net, dataset.test_images)
    return {"int_accuracy": float((trace.classes == dataset.test_labels).mean()),
            "int_spikes_per_hidden_neuron": trace.spikes_per_hidden_neuron(net),
            "int_sops": float(trace.sops.mean()), "weight_bits": net.weight_bits}


def epoch_times(cfg: TrainConfig, dataset, epochs: int) -> dict[str, float]:
    """Median wall and CPU seconds per epoch of the ReLU twin and of the SNN with every part
    active, alternating one epoch of each so both see the same machine load."""
    snn = replace(cfg, epochs=1, sr_epochs=0, tk_epoch=0, max_spikes=None)
    rows: dict[str, list] = {"relu": [], "snn": []}
    for _ in range(epochs):
        for name, c in (("relu", replace(snn, method="relu")), ("snn", snn)):
            h = fit(c, dataset, quiet=True).history[0]
            rows[name].append((h["train_seconds"], h["train_cpu_seconds"]))
    return {f"{name}_{kind}": float(np.median([r[i] for r in rows[name]]))
            for name in rows for i, kind in enumerate(("seconds", "cpu_seconds"))}


def run_record(name: str, record: Record, out: Path, speed_epochs: int) -> dict:
    cfg = TrainConfig(**record.config)
    dataset = load_dataset(cfg.dataset)
    load = os.getloadavg()[0]
    start = time.time()
    result = train(cfg, out / name, force=True, quiet=True)
    wall = time.time() - start
    row = {"name": name, "aim": record.aim, "command": command(name, record.config, out),
           "wall_seconds": wall, "load_before": load, "load_after": os.getloadavg()[0],
           "float_accuracy": result["snn_test_accuracy"],
           "epochs": cfg.epochs, "train_images": result["train_images"],
           "test_images": result["test_images"]}
    row |= integer_metrics(out / name, dataset)
    if record.vs_twin:
        twin = train(replace(cfg, method="relu"), out / f"{name}-relu", force=True, quiet=True)
        row["twin_accuracy"] = twin["test_accuracy"]
    if speed_epochs:
        row |= epoch_times(cfg, dataset, speed_epochs)
    met = []
    if record.min_accuracy is not None:
        met.append(row["int_accuracy"] >= record.min_accuracy)
    if record.max_spikes is not None:
        met.append(row["int_spikes_per_hidden_neuron"] <= record.max_spikes)
    if record.vs_twin:
        met.append(row["int_accuracy"] >= row["twin_accuracy"])
    row["met"] = all(met)
    return row


def table(rows: list[dict]) -> list[str]:
    lines = ["| record | aim | met | float SNN | integer | spikes / hidden neuron | "
             "SOPs / image | s/epoch SNN vs ReLU | epochs, wall | train / test images |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        speed = "n/a"
        if "snn_seconds" in r:
            speed = (f"{r['snn_seconds']:.1f} / {r['relu_seconds']:.1f} = "
                     f"{r['snn_seconds'] / r['relu_seconds']:.2f}x wall")
        if "snn_cpu_seconds" in r:
            speed += f", {r['snn_cpu_seconds'] / r['relu_cpu_seconds']:.2f}x CPU"
        aim = r["aim"] + (f" (twin {100 * r['twin_accuracy']:.2f} %)" if "twin_accuracy" in r
                          else "")
        lines.append(
            f"| {r['name']} | {aim} | {'met' if r['met'] else 'missed'} | "
            f"{100 * r['float_accuracy']:.2f} % | {100 * r['int_accuracy']:.2f} % | "
            f"{r['int_spikes_per_hidden_neuron']:.3f} | {r['int_sops']:,.0f} | {speed} | "
            f"{r['epochs']}, {r['wall_seconds'] / 60:.0f} min (load {r['load_before']:.1f}) | "
            f"{r['train_images']:,} / {r['test_images']:,} |")
    lines += ["", "Commands:", ""] + [f"    {r['command']}" for r in rows]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=list(RECORDS), default=list(RECORDS))
    p.add_argument("--out", type=Path, default=Path("runs/records"))
    p.add_argument("--json", type=Path, default=Path("runs/records/records.jsonl"))
    p.add_argument("--results", type=Path, default=Path("runs/records/records.md"))
    p.add_argument("--epochs", type=int, help="override the records' epochs (a shorter "
                   "budget; the table shows the epochs used)")
    p.add_argument("--speed-epochs", type=int, default=2,
                   help="interleaved relu/SNN epochs per record for the speed ratio (0: none)")
    args = p.parse_args(argv)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    for name in args.only:
        record = RECORDS[name]
        if args.epochs:
            record = replace(record, config=record.config | {"epochs": args.epochs})
        row = run_record(name, record, args.out, args.speed_epochs)
        with open(args.json, "a") as f:
            f.write(json.dumps(row) + "\n")
        rows = [json.loads(line) for line in args.json.read_text().splitlines()]
        args.results.write_text("\n".join(table(rows)) + "\n")
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
