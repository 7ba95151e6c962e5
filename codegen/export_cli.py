"""`ttfs-export`: quantize a run (or take a model.ttfs), write golden vectors, emit a target.

    ttfs-export RUN_DIR_OR_MODEL --target onnx|mcu|fpga -o OUT [options]

Everything is written into a temporary folder beside OUT and swapped into place atomically only
when the target's emitter succeeded (`ttfs.sdk.outdir`): a failure or a kill never leaves a
half-written OUT, and OUT may not be the current folder, the home folder, a filesystem root, or
be, contain or lie inside the source. OUT holds
`model.ttfs`, `vectors.npz` (the generated corner vectors of
`ttfs.sdk.vectors.corner_images`, then N
class-stratified test images of the run's dataset, or N seeded random images for a bare
model.ttfs; with `labels` and `kind`), `export.json` (target, name, table coverage,
options, IR hash, generator; no timestamp) and the target's files.

Exit statuses (every CLI of the SDK): 0 ok; 1 a verification mismatch or a bug in a generated
design; 2 bad input (one line `error: ...` on stderr); 3 a missing tool or Python extra.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ttfs.codegen import targets, tools
from ttfs.codegen.fpga_flow import DEVICES
from ttfs.codegen.targets import DesignError, ExportContext, ExportError, Report
from ttfs.sdk import __version__, ir, outdir, randnet, vectors
from ttfs.sdk.data import DatasetError, load_dataset
from ttfs.sdk.floatnet import NetworkError, load_float_network, read_config
from ttfs.sdk.quantize import QuantizeError, quantize

EXPORT_FILE = "export.json"
#: Errors a user can fix; each is printed as one line and exits with status 2.
USER_ERRORS = (ExportError, ir.TTFSFormatError, QuantizeError, NetworkError, DatasetError,
               outdir.OutDirError)
EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_MISSING = 0, 1, 2, 3
RANDOM_IMAGES_SEED = 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ttfs-export",
        description="Quantize a trained run (or take a model.ttfs), write golden vectors and "
                    "emit C firmware (mcu), Verilog (fpga) or ONNX (onnx); --target golden "
                    "writes the integer model and golden vectors only (a regression baseline).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""examples:
  ttfs-export runs/mlp --target mcu -o out/mlp-mcu --verify
      C99 model + runtime + Cortex-M example project; checks it with gcc (strict and
      ASan/UBSan) and under QEMU against the golden simulator, prints flash and RAM
  ttfs-export runs/mlp --target fpga -o out/mlp-fpga --num-pe 8 --verify
      Verilog + .mem weights + cocotb bench; runs it on Verilator, synthesizes with Yosys
  ttfs-export runs/mlp --target onnx -o out/mlp-onnx --verify --vectors 1000
      float surrogate as standard ONNX ops, checked with onnxruntime against torch
  ttfs-export out/mlp-mcu/model.ttfs --target fpga -o out/mlp-fpga2
      start from an integer model (no torch needed)
  ttfs-verify out/mlp-fpga
      re-run an exported folder's checks later (e.g. in a hardware regression)

exit status: 0 ok, 1 verification mismatch or a broken generated design, 2 bad input
(one-line 'error: ...'), 3 a missing tool or Python extra (the message says what to install)""")
    p.add_argument("source", help="run directory (config.json + model.safetensors) or a "
                                  "model.ttfs file")
    p.add_argument("--target", required=True, choices=targets.TARGETS)
    p.add_argument("-o", "--out", required=True,
                   help="output folder (must not exist or be empty unless --force; never the "
                        "current or home folder, nor the source or a folder around it)")
    p.add_argument("--weight-bits", type=int, default=None,
                   help="signed weight width 2..16 (default: the run config's weight_bits "
                        "from quantization-aware training, else 8; run directories only)")
    p.add_argument("--kernel-bits", type=int, default=None,
                   help="unsigned kernel width 2..16 (default: the run config's kernel_bits, "
                        "else 8; run directories only)")
    p.add_argument("--name", default=None, help="model name, a C/Verilog identifier "
                                                "(default 'model', or the model.ttfs's name)")
    p.add_argument("--vectors", type=int, default=100, metavar="N",
                   help="golden vectors: N >= 1 class-stratified test images besides the "
                        "generated corner vectors (default 100)")
    p.add_argument("--verify", action="store_true", help="run the target's checks afterwards")
    p.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    p.add_argument("--num-pe", type=int, default=None,
                   help="fpga: number of processing elements")
    p.add_argument("--sim", choices=("verilator", "icarus", "both"), default=None,
                   help="fpga: simulator for --verify (default verilator)")
    p.add_argument("--device", choices=sorted(DEVICES), default=None,
                   help="fpga: the FPGA to fit; picks the fastest num_pe/lanes/ways/fire that "
                        "fits it (explicit options win) and, with --verify, places and routes "
                        "the design on it")
    p.add_argument("--board", default=None,
                   help="mcu: QEMU board for --verify (e.g. mps2-an385, microbit)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other target option (repeatable)")
    return p


def target_options(args: argparse.Namespace) -> dict:
    """The target options: the explicit flags that were given, then every --option KEY=VALUE."""
    flags = {"num_pe": ("--num-pe", "fpga"), "sim": ("--sim", "fpga"),
             "device": ("--device", "fpga"), "board": ("--board", "mcu")}
    options = {}
    for key, (flag, target) in flags.items():
        value = getattr(args, key)
        if value is None:
            continue
        if args.target != target:
            raise ExportError(f"{flag} is an option of --target {target}, not of "
                              f"--target {args.target}")
        options[key] = value
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ExportError(f"--option: expected KEY=VALUE, got {item!r}")
        ir.check_identifier(key, "--option key")
        options[key] = value
    return options


def load_source(args: argparse.Namespace
                ) -> tuple[ir.Network, Path | None, np.ndarray, np.ndarray]:
    """(network, run dir or None, test images for the vectors, their labels) from the source
    argument: N class-stratified test images of a run's dataset (`ttfs.sdk.vectors.select_images`),
    or N seeded random images (label -1) for a bare model.ttfs."""
    source = Path(args.source)
    if args.vectors < 1:
        raise ExportError(f"--vectors: expected N >= 1, got {args.vectors}")
    if source.is_dir():
        for what in ("weight_bits", "kernel_bits"):
            bits = getattr(args, what)
            if bits is not None and not 2 <= bits <= 16:
                raise ExportError(f"--{what.replace('_', '-')}: expected 2..16, got {bits}")
        # None: the run config's widths (quantization-aware training), else 8
        net = quantize(load_float_network(source), weight_bits=args.weight_bits,
                       kernel_bits=args.kernel_bits, name=args.name or "model")
        dataset = read_config(source).get("dataset")
        if not isinstance(dataset, str):
            raise ExportError(f"{source / 'config.json'}: no 'dataset' to take test images from")
        data = load_dataset(dataset)
        if tuple(data.input_shape) != tuple(net.input_shape):
            raise ExportError(f"{source / 'config.json'}: 'input_shape' {list(net.input_shape)} "
                              f"does not match dataset '{dataset}' images "
                              f"{list(data.input_shape)}")
        n = min(args.vectors, len(data.test_labels))
        chosen = vectors.select_images(data.test_images, data.test_labels, n,
                                       seed=RANDOM_IMAGES_SEED)
        return net, source, data.test_images[chosen], np.asarray(data.test_labels)[chosen]
    if not source.is_file():
        raise ExportError(f"{source}: no such run directory or model.ttfs file")
    if args.weight_bits is not None or args.kernel_bits is not None:
        raise ExportError("--weight-bits/--kernel-bits apply to run directories; a model.ttfs "
                          "is already quantized")
    net = ir.load(source)
    if args.name is not None and args.name != net.name:
        ir.check_identifier(args.name, "--name")
        net = _renamed(net, args.name)
    images = randnet.random_images(RANDOM_IMAGES_SEED, net, args.vectors)[2:]
    return net, None, images, np.full(len(images), -1)


def _renamed(net: ir.Network, name: str) -> ir.Network:
    fields = ("T", "weight_bits", "kernel_bits", "input_shape", "input_coding", "layers",
              "input_times", "input_kernel", "reference")
    return ir.Network(name=name, **{f: getattr(net, f) for f in fields})


def export(args: argparse.Namespace) -> Path:
    """Run the export described by parsed `args`; returns OUT. Raises USER_ERRORS."""
    if args.name is not None:
        ir.check_identifier(args.name, "--name")
    out = outdir.check_target(args.out, sources=[args.source])
    outdir.check_replaceable(out, force=args.force)
    options = target_options(args)
    target = load_target(args.target)
    net, run_dir, images, labels = load_source(args)
    corners = vectors.corner_images(net)
    images = np.concatenate([corners, images.reshape(len(images), -1).astype(np.uint8)])
    labels = np.concatenate([np.full(len(corners), -1), labels])
    kind = np.array(["corner"] * len(corners) + ["image"] * (len(images) - len(corners)))
    with outdir.replacing(out, force=args.force, sources=[args.source]) as tmp:
        content_hash = ir.save(net, tmp / "model.ttfs")
        golden_vectors = vectors.make(net, images, labels=labels, kind=kind)
        vectors.save(golden_vectors, tmp / "vectors.npz")
        record = {"target": args.target, "name": net.name, "options": options,
                  "ir_hash": content_hash, "generator": f"ttfs-sdk {__version__}",
                  "vectors": len(images), "corner_vectors": len(corners),
                  "coverage": vectors.table_coverage(net, golden_vectors.trace),
                  "weight_bits": net.weight_bits,
                  "kernel_bits": net.kernel_bits}
        (tmp / EXPORT_FILE).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        target.emit(ExportContext(net=net, vectors=golden_vectors, out=tmp, name=net.name,
                                  run_dir=run_dir, options=options))
    return out


def load_target(name: str):
    """The target module; a target whose module is not installed is a user error."""
    try:
        return targets.get(name)
    except ModuleNotFoundError as exc:
        if exc.name != f"ttfs.codegen.targets.{name}":
            raise
        raise ExportError(f"--target {name}: this installation has no {name} target") from None


def print_report(report: Report) -> None:
    for line in report.lines:
        print(line)
    if report.first_mismatch:
        print(report.first_mismatch)
    verdict = {"pass": "OK", "fail": "MISMATCH", "error": "ERROR"}[report.status]
    errors = f", {report.errors} errors" if report.errors else ""
    print(f"{report.target}: {report.passed} passed, {report.failed} failed{errors} -> "
          f"{verdict}")


def guarded(body: Callable[[], int]) -> int:
    """Run a CLI body; map its failures to one `error:` line and the SDK's exit statuses:
    USER_ERRORS -> 2, a broken generated design -> 1, a missing tool or optional Python
    package -> 3 (naming what to install). Anything else is a bug and keeps its traceback."""
    try:
        return body()
    except DesignError as exc:
        return _error(exc, EXIT_MISMATCH)
    except USER_ERRORS as exc:
        return _error(exc, EXIT_USAGE)
    except tools.ToolMissing as exc:
        return _error(exc, EXIT_MISSING)
    except ModuleNotFoundError as exc:
        if not tools.is_optional_module(exc.name):
            raise
        return _error(tools.missing_extra(exc.name, "this command"), EXIT_MISSING)


def _error(exc: BaseException, status: int) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def body() -> int:
        out = export(args)
        record = json.loads((out / EXPORT_FILE).read_text())
        print(f"wrote {out} ({args.target}; {record['vectors']} vectors, "
              f"{record['corner_vectors']} of them corner vectors)")
        print("table coverage: " + vectors.format_coverage(record["coverage"])
              .replace("\n", "\n                "))
        if not args.verify:
            return EXIT_OK
        from ttfs.codegen.verify_cli import REPORT_FILE, run_verify

        report, _, build = run_verify(out)
        print_report(report)
        print(f"report: {build / REPORT_FILE}")
        return EXIT_OK if report.ok else EXIT_MISMATCH

    return guarded(body)


if __name__ == "__main__":
    sys.exit(main())
