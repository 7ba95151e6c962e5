"""Benchmark of `ttfs-convert`: a ReLU CNN trained with plain torch, exported to ONNX, converted.

    nice -n 10 python bench/convert.py [--dataset mnist5k] [--epochs 15] [--finetune 5]

Prints one table: the ReLU network's test accuracy (onnxruntime), the converted TTFS network
before and after fine-tuning (float SNN, closed form), the integer model (ttfs.sdk.quantize +
ttfs.sdk.golden) and spikes per hidden neuron. Runs on one torch thread (shared CPUs).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ttfs.sdk import golden  # noqa: E402
from ttfs.sdk.convert import ConvertOptions, convert, finetune, write  # noqa: E402
from ttfs.sdk.data import load_dataset, split_validation  # noqa: E402
from ttfs.sdk.floatnet import load_float_network  # noqa: E402
from ttfs.sdk.quantize import quantize  # noqa: E402


def relu_cnn(input_shape, num_classes: int) -> nn.Sequential:
    """The `cnn` architecture of ttfs-train as a plain ReLU network (pool after ReLU)."""
    c, h, w = input_shape
    return nn.Sequential(
        nn.Conv2d(c, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * (h // 4) * (w // 4), 128), nn.ReLU(),
        nn.Linear(128, num_classes))


def train_relu(model: nn.Module, images: np.ndarray, labels: np.ndarray, *, epochs: int,
               seed: int = 0, lr: float = 1e-3, batch_size: int = 128) -> nn.Module:
    """Plain Adam + cross-entropy on byte / 255 inputs (what our pipeline feeds)."""
    torch.manual_seed(seed)
    x = torch.from_numpy(images).float() / 255.0
    y = torch.from_numpy(labels)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def export_onnx(model: nn.Module, input_shape, path: Path) -> None:
    torch.onnx.export(model, torch.zeros(1, *input_shape), str(path), input_names=["x"],
                      output_names=["scores"], dynamic_axes={"x": {0: "n"}, "scores": {0: "n"}},
                      opset_version=17, dynamo=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--epochs", type=int, default=30, help="ReLU training epochs")
    p.add_argument("--finetune", type=int, default=5)
    defaults = ConvertOptions()
    p.add_argument("--T", type=int, default=defaults.T)
    p.add_argument("--lambda-bn", type=float, default=defaults.lambda_bn)
    p.add_argument("--tkbn-form", default=defaults.tkbn_form)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--out", help="keep the converted runs here")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    dataset = load_dataset(args.dataset)
    train_x, train_y, _, _ = split_validation(dataset.train_images, dataset.train_labels)
    start = time.perf_counter()
    model = train_relu(relu_cnn(dataset.input_shape, dataset.num_classes), train_x, train_y,
                       epochs=args.epochs)
    relu_seconds = time.perf_counter() - start
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.out or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        onnx_path = folder / "relu_cnn.onnx"
        export_onnx(model, dataset.input_shape, onnx_path)
        options = ConvertOptions(dataset=args.dataset, T=args.T, finetune=args.finetune,
                                 lambda_bn=args.lambda_bn, tkbn_form=args.tkbn_form,
                                 lr=args.lr, batch_size=args.batch_size)
        start = time.perf_counter()
        converted = convert(onnx_path, replace(options, finetune=0), quiet=True)
        stages = [(0, converted, time.perf_counter() - start)]
        if args.finetune:
            start = time.perf_counter()
            stages.append((args.finetune, finetune(converted, options, dataset, quiet=True),
                           time.perf_counter() - start))
        for epochs, result, seconds in stages:
            run = folder / f"converted-ft{epochs}"
            write(result, run, force=True)
            trace = golden.run(quantize(load_float_network(run)), dataset.test_images)
            r = result.result
            rows.append((f"TTFS converted, {epochs} fine-tuning epochs", r["snn_test_accuracy"],
                         float((trace.classes == dataset.test_labels).mean()),
                         r["spikes_per_hidden_neuron"], r["sops"], seconds))
        relu = converted.result["relu_test_accuracy"]
        taus = ", ".join(f"{c['name']} tau {c['tau']:.2f} p{c['percentile']:g}"
                         for c in converted.config["convert"]["layers"])
    print(f"dataset {args.dataset}, T = {args.T}, ReLU CNN trained {args.epochs} epochs "
          f"({relu_seconds:.0f} s); calibrated: {taus}")
    print(f"fine-tuning: {options.method}, lr {options.lr:g}, batch {options.batch_size}, "
          f"lambda_BN {options.lambda_bn:g} ({options.tkbn_form})")
    print("| network | float test accuracy | integer (golden) | spikes / hidden neuron | "
          "SOPs / inference | seconds |")
    print("|---|---|---|---|---|---|")
    print(f"| ReLU CNN (onnxruntime) | {relu:.2%} | - | - | - | {relu_seconds:.0f} |")
    for name, acc, int_acc, spikes, sops, seconds in rows:
        print(f"| {name} | {acc:.2%} | {int_acc:.2%} | {spikes:.3f} | {sops:,.0f} | "
              f"{seconds:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
