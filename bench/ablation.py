"""Ablation of the training methods on mnist5k (MLP and CNN), written to docs/results.md.

    python bench/ablation.py [--mlp-epochs 30] [--cnn-epochs 40] [--archs mlp cnn]
                             [--methods relu sm sr sr+tr sr+tr+tkbn]
                             [--lambda-bn X] [--T N] [--tau0 X] [--out runs/ablation]

For each architecture and method (relu, sm, sr, sr+tr, sr+tr+tkbn) it trains a run with the
`ttfs-train` defaults (E_SR = E_tk = epochs // 4) and reports the selected checkpoint's test
accuracy, spikes per hidden neuron and SOPs per inference (float SNN on the 1,000 test images),
the median training seconds per epoch (robust to a noisy shared machine), and the
sr+tr+tkbn / relu time ratio. Targets (CNN):
sr+tr+tkbn within 1.0 pp of relu, <= 0.3 spikes per hidden neuron, fewer spikes than sr+tr,
time per epoch <= 1.5x relu. `--methods` restricts the rows (relu is always trained, as the
reference of the time ratio); e.g. the quick timing check

    python bench/ablation.py --archs cnn --cnn-epochs 3 --methods relu sr+tr+tkbn \
        --out /tmp/abl --results /tmp/abl.md
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from ttfs.sdk.train import METHODS, TrainConfig, train


def table(arch: str, epochs: int, results: dict[str, dict]) -> list[str]:
    relu_seconds = results["relu"]["seconds"]
    lines = [f"### {arch}, {epochs} epochs", "",
             "| method | test accuracy | spikes / hidden neuron | SOPs / inference | "
             "s / epoch | time vs relu |", "|---|---|---|---|---|---|"]
    for method, r in results.items():
        spikes = "n/a (DNN)" if r["spikes_per_hidden_neuron"] is None else \
            f"{r['spikes_per_hidden_neuron']:.3f}"
        sops = "n/a (DNN)" if r["sops"] is None else f"{r['sops']:,.0f}"
        lines.append(f"| {method} | {100 * r['test_accuracy']:.1f} % | {spikes} | {sops} | "
                     f"{r['seconds']:.2f} | {r['seconds'] / relu_seconds:.2f}x |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mlp-epochs", type=int, default=30)
    p.add_argument("--cnn-epochs", type=int, default=40)
    p.add_argument("--archs", nargs="+", default=["mlp", "cnn"])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS,
                   help="rows to train (relu is always included)")
    p.add_argument("--lambda-bn", type=float)
    p.add_argument("--T", type=int)
    p.add_argument("--tau0", type=float)
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--results", default="docs/results.md")
    args = p.parse_args(argv)
    overrides = {k: v for k, v in (("lambda_bn", args.lambda_bn), ("T", args.T),
                                   ("tau0", args.tau0)) if v is not None}
    lines = ["# Results", "", "Ablation of the training methods on mnist5k (4,000 train "
             "images, 10 % of them held out for validation; 1,000 test images), measured on "
             "2 CPU cores. Produced by:", "",
             "    python bench/ablation.py " + shlex.join(sys.argv[1:] if argv is None else argv),
             ""]
    for arch in args.archs:
        epochs = args.mlp_epochs if arch == "mlp" else args.cnn_epochs
        base = replace(TrainConfig(dataset="mnist5k", arch=arch, epochs=epochs), **overrides)
        results = {}
        for method in [m for m in METHODS if m == "relu" or m in args.methods]:
            run_dir = Path(args.out) / f"{arch}-{method.replace('+', '-')}"
            result = train(replace(base, method=method), run_dir, force=True, quiet=True)
            results[method] = result | {"seconds": result["train_seconds_per_epoch"]}
            print(f"{arch} {method}: {json.dumps(results[method])}", flush=True)
        cfg = base.resolved()
        lines += table(arch, epochs, results)
        lines.append(f"Settings: T = {cfg.T}, tau0 = {cfg.tau0}, td0 = {cfg.td0}, "
                     f"q = {cfg.q}, lambda_R = {cfg.lambda_r}, lambda_BN = {cfg.lambda_bn} "
                     f"({cfg.tkbn_form}), E_SR = {cfg.sr_epochs}, E_tk = {cfg.tk_epoch}, "
                     f"batch {cfg.batch_size}, Adam lr {cfg.lr}, seed {cfg.seed}.")
        lines.append("")
    Path(args.results).write_text("\n".join(lines))
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
