"""`ttfs-convert`: bring a trained ReLU network (ONNX) into the TTFS pipeline.

    ttfs-convert MODEL.onnx --dataset mnist5k -o runs/converted [--finetune 5]

Writes a normal run directory (config.json, model.safetensors, result.json) that
`ttfs-train --eval` and `ttfs-export` accept. Bad input (an unsupported op or attribute, a
malformed file, an input shape that does not match the dataset, bad options, an existing
non-empty output without --force) prints one line `error: ...` naming the node or option and
exits with 2; nothing is written then.
"""

from __future__ import annotations

import argparse
import sys


EPILOG = """examples:
  ttfs-convert model.onnx --dataset mnist5k -o runs/conv
      import, calibrate on 500 training images, write the run (no training)
  ttfs-convert model.onnx --dataset mnist5k -o runs/conv-ft --finetune 5
      then fine-tune 5 epochs with SR + TR + TKBN to cut spikes
  ttfs-convert model.onnx --dataset digits -o runs/d --input-scale 255
      the model was trained on raw bytes 0..255 instead of byte / 255
  ttfs-convert model.onnx --dataset mnist5k -o runs/n --input-offset -0.4242 --input-scale 3.2457
      the model expects (x - 0.1307) / 0.3081 (torchvision Normalize) but has no Sub/Div nodes
  ttfs-train --eval runs/conv && ttfs-export runs/conv --target mcu -o out/mcu --verify

supported ONNX (opset >= 13, NCHW, one chain): Conv (group 1, dilation 1, symmetric pads),
Gemm, MatMul (+Add), BatchNormalization (folded), Relu after every weighted layer but the last,
MaxPool (kernel = stride, no padding), Flatten, Reshape to [N, features], Identity, a final
Softmax, input Sub/Div/Mul/Add by constants (folded into the first layer).

exit status: 0 ok, 2 bad input (one-line 'error: ...'); see docs/convert.md"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise ValueError(message)


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or a comma-separated list, got "
                                         f"{text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    from ttfs.sdk.convert import DEFAULT_CALIBRATION, ConvertOptions

    d = ConvertOptions()
    p = _Parser(prog="ttfs-convert", epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Convert a trained ReLU network (ONNX) into a TTFS run directory: "
                "per-layer kernel parameters and weight scales from calibration data, then "
                "optional fine-tuning with the paper's SR + TR + TKBN.")
    p.add_argument("model", help="the ONNX file")
    p.add_argument("--dataset", required=True,
                   help="dataset the model classifies (mnist5k, digits, idx:<dir>, ...); its "
                   "images must match the model's input shape")
    p.add_argument("--data-dir", help="source folder for mnist / fashion-mnist (default "
                   "$TTFS_DATA_DIR; see ttfs-train --help)")
    p.add_argument("-o", "--out", required=True, help="run directory to write")
    p.add_argument("--calibration", type=int, default=DEFAULT_CALIBRATION, metavar="N",
                   help=f"training images used for calibration (default {DEFAULT_CALIBRATION})")
    p.add_argument("--finetune", type=int, default=0, metavar="EPOCHS",
                   help="fine-tuning epochs after conversion (default 0: none); the defaults "
                   "suit a few hundred steps in all (mnist5k: 5 epochs); for large datasets "
                   "use fewer steps, e.g. full MNIST: --finetune 1 --batch-size 128 "
                   "--lambda-bn 0.01 (docs/convert.md)")
    p.add_argument("--method", default=d.method,
                   help=f"fine-tuning method: sm, sr, sr+tr, sr+tr+tkbn (default {d.method})")
    p.add_argument("--T", type=int, default=d.T, help=f"time steps per window (default {d.T})")
    p.add_argument("--tau", type=float, help="one tau for every layer (default: calibrated "
                   "per layer)")
    p.add_argument("--percentile", type=float, help="activation percentile mapped to x_max "
                   "(default: calibrated per layer from 99, 99.9, 99.99, 100)")
    p.add_argument("--lr", type=float, default=d.lr, help=f"fine-tuning Adam lr (default "
                   f"{d.lr:g})")
    p.add_argument("--lambda-bn", type=float, default=d.lambda_bn,
                   help=f"TKBN weight (default {d.lambda_bn:g})")
    p.add_argument("--batch-size", type=int, default=d.batch_size,
                   help=f"fine-tuning mini-batch (default {d.batch_size})")
    p.add_argument("--tkbn-form", default=d.tkbn_form, help="taylor (paper) | tail")
    p.add_argument("--input-scale", type=_floats, default=d.input_scale, metavar="S[,S..]",
                   help="the model's input is S * byte/255 + O (per channel); default 1")
    p.add_argument("--input-offset", type=_floats, default=d.input_offset, metavar="O[,O..]",
                   help="see --input-scale; default 0")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def run(argv: list[str] | None = None) -> int:
    from ttfs.sdk.cli import format_table, result_rows
    from ttfs.sdk.convert import ConvertOptions, convert, write
    from ttfs.sdk import outdir

    args = build_parser().parse_args(argv)
    out = outdir.check_target(args.out, sources=[args.model], what="-o")
    outdir.check_replaceable(out, force=args.force, what="-o")
    options = ConvertOptions(
        dataset=args.dataset, T=args.T, tau=args.tau, percentile=args.percentile,
        calibration=args.calibration, finetune=args.finetune, method=args.method, lr=args.lr,
        lambda_bn=args.lambda_bn, tkbn_form=args.tkbn_form, seed=args.seed,
        batch_size=args.batch_size, data_dir=args.data_dir,
        input_scale=args.input_scale, input_offset=args.input_offset)
    converted = convert(args.model, options, quiet=args.quiet)
    write(converted, out, force=args.force, sources=[args.model])
    r = converted.result
    rows = [("ReLU network (onnxruntime)", f"{100 * r['relu_test_accuracy']:.2f} %")]
    if args.finetune:
        b = r["before_finetune"]
        rows.append(("float SNN before fine-tuning", f"{100 * b['snn_test_accuracy']:.2f} % at "
                     f"{b['spikes_per_hidden_neuron']:.4f} spikes per hidden neuron"))
    print(format_table(rows + result_rows(r)))
    print(f"run written to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status (2 on any user error)."""
    from ttfs.sdk.cli import guarded

    return guarded(run, argv)


if __name__ == "__main__":
    sys.exit(main())
