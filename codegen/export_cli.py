"""`ttfs-export`: quantize a run (or take a model.ttfs), write golden vectors, emit a target.

    ttfs-export RUN_DIR_OR_MODEL --target onnx|mcu|fpga -o OUT [options]

Everything is written into a temporary folder beside OUT and renamed into place only when the
target's emitter succeeded, so a failure never leaves a half-written OUT. OUT holds
`model.ttfs`, `vectors.npz` (the all-0 and all-255 images, then the first N test images of the
run's dataset, or N seeded random images for a bare model.ttfs), `export.json` (target, name,
options, IR hash, generator; no timestamp) and the target's files. User errors print one line
`error: ...` on stderr and exit with status 2; `--verify` failures exit with status 1.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from codegen import targets, tools
from codegen.targets import ExportContext, ExportError, Report
from sdk import __version__, ir, randnet, vectors
from sdk.data import DatasetError, load_dataset
from sdk.floatnet import NetworkError, load_float_network, read_config
from sdk.quantize import QuantizeError, quantize

EXPORT_FILE = "export.json"
#: Errors a user can fix; each is printed as one line and exits with status 2.
USER_ERRORS = (ExportError, ir.TTFSFormatError, QuantizeError, NetworkError, DatasetError,
               tools.ToolMissing)
RANDOM_IMAGES_SEED = 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ttfs-export",
        description="Quantize a trained run (or take a model.ttfs), write golden vectors and "
                    "emit C firmware (mcu), Verilog (fpga) or ONNX (onnx).",
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

exit status: 0 ok, 1 verification mismatch, 2 bad input (one-line 'error: ...')""")
    p.add_argument("source", help="run directory (config.json + model.safetensors) or a "
                                  "model.ttfs file")
    p.add_argument("--target", required=True, choices=targets.TARGETS)
    p.add_argument("-o", "--out", required=True, type=Path,
                   help="output folder (must not exist or be empty unless --force)")
    p.add_argument("--weight-bits", type=int, default=None,
                   help="signed weight width 2..16 (default 8; run directories only)")
    p.add_argument("--kernel-bits", type=int, default=None,
                   help="unsigned kernel width 2..16 (default 8; run directories only)")
    p.add_argument("--name", default=None, help="model name, a C/Verilog identifier "
                                                "(default 'model', or the model.ttfs's name)")
    p.add_argument("--vectors", type=int, default=100, metavar="N",
                   help="golden vectors: N test images besides the all-0 and all-255 images "
                        "(default 100)")
    p.add_argument("--verify", action="store_true", help="run the target's checks afterwards")
    p.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    p.add_argument("--num-pe", type=int, default=None,
                   help="fpga: number of processing elements")
    p.add_argument("--sim", choices=("verilator", "icarus"), default=None,
                   help="fpga: simulator for --verify")
    p.add_argument("--board", default=None,
                   help="mcu: QEMU board for --verify (e.g. mps2-an385, microbit)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other target option (repeatable)")
    return p


def target_options(args: argparse.Namespace) -> dict:
    """The target options: the explicit flags that were given, then every --option KEY=VALUE."""
    options = {key: value for key, value in (("num_pe", args.num_pe), ("sim", args.sim),
                                             ("board", args.board)) if value is not None}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ExportError(f"--option: expected KEY=VALUE, got {item!r}")
        ir.check_identifier(key, "--option key")
        options[key] = value
    return options


def check_out(out: Path, *, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ExportError(f"-o {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportError(f"-o {out} exists and is not empty; pass --force to replace it")


def load_source(args: argparse.Namespace) -> tuple[ir.Network, Path | None, np.ndarray]:
    """(network, run dir or None, test images for the vectors) from the source argument."""
    source = Path(args.source)
    if args.vectors < 0:
        raise ExportError(f"--vectors: expected N >= 0, got {args.vectors}")
    if source.is_dir():
        for what in ("weight_bits", "kernel_bits"):
            bits = getattr(args, what)
            if bits is not None and not 2 <= bits <= 16:
                raise ExportError(f"--{what.replace('_', '-')}: expected 2..16, got {bits}")
        net = quantize(load_float_network(source), weight_bits=args.weight_bits or 8,
                       kernel_bits=args.kernel_bits or 8, name=args.name or "model")
        dataset = read_config(source).get("dataset")
        if not isinstance(dataset, str):
            raise ExportError(f"{source / 'config.json'}: no 'dataset' to take test images from")
        return net, source, load_dataset(dataset).test_images[:args.vectors]
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
    return net, None, images


def _renamed(net: ir.Network, name: str) -> ir.Network:
    fields = ("T", "weight_bits", "kernel_bits", "input_shape", "input_coding", "layers",
              "input_times", "input_kernel", "reference")
    return ir.Network(name=name, **{f: getattr(net, f) for f in fields})


def export(args: argparse.Namespace) -> Path:
    """Run the export described by parsed `args`; returns OUT. Raises USER_ERRORS."""
    if args.name is not None:
        ir.check_identifier(args.name, "--name")
    out = args.out
    check_out(out, force=args.force)
    options = target_options(args)
    target = load_target(args.target)
    net, run_dir, images = load_source(args)
    images = np.concatenate([vectors.corner_images(net),
                             images.reshape(len(images), -1).astype(np.uint8)])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)            # mkdtemp makes it private; OUT is an ordinary folder
    try:
        content_hash = ir.save(net, tmp / "model.ttfs")
        golden_vectors = vectors.make(net, images)
        vectors.save(golden_vectors, tmp / "vectors.npz")
        record = {"target": args.target, "name": net.name, "options": options,
                  "ir_hash": content_hash, "generator": f"ttfs-sdk {__version__}",
                  "vectors": len(images), "weight_bits": net.weight_bits,
                  "kernel_bits": net.kernel_bits}
        (tmp / EXPORT_FILE).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        target.emit(ExportContext(net=net, vectors=golden_vectors, out=tmp, name=net.name,
                                  run_dir=run_dir, options=options))
        check_out(out, force=args.force)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def load_target(name: str):
    """The target module; a target whose module is not installed is a user error."""
    try:
        return targets.get(name)
    except ModuleNotFoundError as exc:
        if exc.name != f"codegen.targets.{name}":
            raise
        raise ExportError(f"--target {name}: this installation has no {name} target") from None


def print_report(report: Report) -> None:
    for line in report.lines:
        print(line)
    if report.first_mismatch:
        print(report.first_mismatch)
    print(f"{report.target}: {report.passed} passed, {report.failed} failed -> "
          f"{'OK' if report.ok else 'MISMATCH'}")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        out = export(args)
        print(f"wrote {out} ({args.target})")
        if not args.verify:
            return 0
        report = load_target(args.target).verify(out)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_report(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
