"""MCU benchmark: instructions per inference of the generated event-driven C against a
straightforward dense int8 implementation of the same integer network, plus flash and RAM.

    .venv/bin/python -m bench.mcu [--images N] [--random]

Models: the mnist5k MLP (784-256-10) and CNN (conv5x5 16 pad 2 - pool 2 - conv5x5 32 pad 2 -
pool 2 - dense 128 - out 10), trained with ttfs.sdk.train for ARCHS epochs into runs/bench-mcu-*
(reused when present), quantized to 8 bits; with --random (or without torch) random weights
whose thresholds are calibrated to about 15 % firing neurons per layer instead. Inputs: mnist5k
test images.

Counts: valgrind callgrind on the host (x86-64, `--toggle-collect=bench_infer`) and Cortex-M3
(mps2-an385) under QEMU through the instruction-counting TCG plugin bench/mcu_src/insn_count.c
(difference of a build with N inferences and one with none). Both implementations are compiled
with the same flags (-O2) and checked against the golden simulator before they are timed.
Flash and RAM: `arm-none-eabi-size` of the model's object file (weights, tables, code; static
RAM).
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ttfs.codegen import mcu_view
from ttfs.codegen.jinja_env import environment
from ttfs.codegen.targets import mcu
from ttfs.sdk import golden, vectors
from ttfs.sdk.ir import SPIKING, WEIGHTED, Conv2d, Dense, Flatten, MaxPool2d, Network, Output

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "bench" / "mcu_src"
EXAMPLE = ROOT / "firmware" / "example"
RUNS = ROOT / "runs"
OPT = "-O2"
ARM = ("-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft")
STRICT = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
ARCHS = {"mlp": 10, "cnn": 40}         # arch -> training epochs for the benchmark run


def sh(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)


# ---------------------------------------------------------------------------------------------
# models


def trained_model(arch: str) -> Network:
    """The 8-bit integer model of runs/bench-mcu-<arch> (trained first if it does not exist)."""
    from ttfs.sdk.floatnet import load_float_network
    from ttfs.sdk.quantize import quantize
    run = RUNS / f"bench-mcu-{arch}"
    if not (run / "model.safetensors").exists():
        from ttfs.sdk.train import TrainConfig, train
        print(f"training {run} ({ARCHS[arch]} epochs) ...", file=sys.stderr, flush=True)
        train(TrainConfig(dataset="mnist5k", arch=arch, epochs=ARCHS[arch]), run, force=True,
              quiet=True)
    return quantize(load_float_network(run), weight_bits=8, kernel_bits=8, name=arch)


def random_model(arch: str, images: np.ndarray, *, seed: int = 0, T: int = 16,
                 tau: float = 5.0, firing: float = 0.15) -> Network:
    """Random 8-bit weights; each layer's thresholds theta[t] = s * exp(-t / tau) with s
    bisected so that about `firing` of its neurons spike on `images` (realistic sparsity)."""
    rng = np.random.default_rng(seed)
    kernel = np.floor(255 * np.exp(-np.arange(T) / tau) + 0.5).astype(np.int32)
    shapes = {"mlp": [("flat",), ("dense", 256)],
              "cnn": [("conv", 16), ("pool",), ("conv", 32), ("pool",), ("flat",),
                      ("dense", 128)]}[arch]
    layers: list = []
    shape = (1, 28, 28)
    for i, step in enumerate(shapes):
        if step[0] == "flat":
            layers.append(Flatten(f"flat{i}"))
        elif step[0] == "pool":
            layers.append(MaxPool2d(f"pool{i}", 2))
        else:
            w_shape = ((step[1], math.prod(shape)) if step[0] == "dense"
                       else (step[1], shape[0], 5, 5))
            weight = rng.integers(-127, 128, w_shape).astype(np.int32)
            bias = np.zeros(step[1], np.int32)

            def make(s, weight=weight, bias=bias, step=step, i=i):
                theta = np.maximum(1, np.ceil(s * np.exp(-np.arange(T) / tau))).astype(np.int32)
                return (Dense if step[0] == "dense" else Conv2d)(
                    f"{step[0]}{i}", weight, bias, theta, kernel,
                    **({} if step[0] == "dense" else {"padding": 2}))
            lo, hi = 1.0, 2.0**30
            for _ in range(40):                       # geometric bisection on the scale
                mid = math.sqrt(lo * hi)
                probe = _probe(layers + [make(mid)], shape_in=(1, 28, 28), T=T)
                rate = golden.run(probe, images).spike_counts[:, -1].mean() / math.prod(
                    probe.info[len(layers)].out_shape)
                lo, hi = (mid, hi) if rate > firing else (lo, mid)
            layers.append(make(hi))
        shape = layers[-1].out_shape(shape)
    out = Output("out", rng.integers(-127, 128, (10, math.prod(shape))).astype(np.int32),
                 np.zeros(10, np.int32))
    return Network(name=arch, T=T, weight_bits=8, kernel_bits=8, input_shape=(1, 28, 28),
                   input_coding="real", layers=tuple(layers) + (out,))


def _probe(layers: list, *, shape_in: tuple, T: int) -> Network:
    """`layers` closed by a flatten and a one-output layer, to read their spike counts."""
    shape = shape_in
    for layer in layers:
        shape = layer.out_shape(shape)
    tail = [] if len(shape) == 1 else [Flatten("probe_flat")]
    n = math.prod(shape)
    return Network(name="probe", T=T, weight_bits=8, kernel_bits=8, input_shape=shape_in,
                   input_coding="real", layers=tuple(layers) + tuple(tail) + (
                       Output("probe_out", np.zeros((1, n), np.int32), np.zeros(1, np.int32)),))


# ---------------------------------------------------------------------------------------------
# the dense baseline


def dense_view(net: Network) -> dict:
    """View of bench/mcu_src/dense_model.c.j2: the arrays and one call sequence per layer."""
    if net.input_coding != "real" or net.weight_bits > 8:
        raise SystemExit("bench: the dense baseline covers real input coding and <= 8-bit weights")
    arrays, steps, buffers = [], [], []
    source, kernel = "pixels", None
    for layer, info in zip(net.layers, net.info):
        n_in, n_out = math.prod(info.in_shape), math.prod(info.out_shape)
        step = {"kind": layer.kind, "n_in": n_in, "n_out": n_out, "source": None, "theta": None}
        if isinstance(layer, WEIGHTED):
            sym = f"{net.name}_{layer.name}"
            arrays += [mcu_view.CArray(f"{sym}_weight", "int8_t", layer.weight.reshape(-1), ""),
                       mcu_view.CArray(f"{sym}_bias", "int32_t", layer.bias, "")]
            step.update(source=source, kernel=kernel, weight=f"{sym}_weight", bias=f"{sym}_bias")
        if isinstance(layer, Conv2d):
            c_in, h, w = info.in_shape
            c_out, h_out, w_out = info.out_shape
            step["conv_args"] = ", ".join(f"{v}U" for v in (
                c_in, h, w, c_out, h_out, w_out, layer.weight.shape[2], layer.stride,
                layer.padding))
        if isinstance(layer, SPIKING):
            sym = f"{net.name}_{layer.name}"
            arrays += [mcu_view.CArray(f"{sym}_theta", "int32_t", layer.theta, ""),
                       mcu_view.CArray(f"{sym}_kernel", "uint16_t", layer.kernel, "")]
            step.update(theta=f"{sym}_theta", times=f"times_{layer.name}")
            source, kernel = f"times_{layer.name}", f"{sym}_kernel"
            buffers.append((f"times_{layer.name}", n_out))
        if isinstance(layer, MaxPool2d):
            c, h, w = info.in_shape
            step.update(pool_source=source, times=f"times_{layer.name}",
                        pool_args=f"{c}U, {h}U, {w}U, {layer.size}U")
            source = f"times_{layer.name}"
            buffers.append((source, n_out))
        steps.append(step)
    weighted = [(layer, i) for layer, i in zip(net.layers, net.info) if isinstance(layer, WEIGHTED)]
    return {"name": net.name, "hash": net.content_hash, "T": net.T, "n_out": net.n_outputs,
            "arrays": arrays, "steps": steps, "time_buffers": buffers,
            "operands_len": max(math.prod(i.in_shape) for _, i in weighted),
            "acc_len": max([math.prod(i.out_shape) for layer, i in weighted
                            if isinstance(layer, SPIKING)] + [1])}


def render(template: Path, **view) -> str:
    return environment().from_string(template.read_text()).render(**view)


# ---------------------------------------------------------------------------------------------
# measurements


@dataclass
class Impl:
    """One implementation of a model: its C sources and the model object to size."""

    label: str
    sources: list[Path]
    model_source: Path
    defines: tuple[str, ...] = ()


def host_counts(impl: Impl, build: Path, net: Network, images: np.ndarray,
                expected: golden.Trace) -> float:
    """Check the implementation on the host, then callgrind instructions per inference."""
    exe = build / f"host-{impl.label}"
    sh(["gcc", *STRICT, OPT, *impl.defines, "-I", str(build), "-I", str(HERE), "-o", str(exe),
        str(HERE / "host_main.c"), *map(str, impl.sources)])
    rows = np.array([list(map(int, line.split())) for line in sh([str(exe)]).stdout.split("\n")
                     if line])
    if not (np.array_equal(rows[:, 0], expected.classes)
            and np.array_equal(rows[:, 1:], expected.scores)):
        raise SystemExit(f"bench: {impl.label} of {net.name} differs from the golden simulator")
    out = build / f"callgrind-{impl.label}.out"
    sh(["valgrind", "--tool=callgrind", "--toggle-collect=bench_infer",
        f"--callgrind-out-file={out}", str(exe)])
    total = int(re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M).group(1))
    return total / len(images)


def target_counts(impl: Impl, build: Path, n: int, plugin: Path, board: str
                  ) -> tuple[float, dict]:
    """Instructions per inference on `board` (mcu_view.BOARDS) under QEMU, and the model
    object's sizes: the example project's startup and linker script, the board's compiler."""
    spec = mcu_view.BOARDS[board]
    arch = (*spec.arch_flags.split(), spec.libc)
    counts = []
    for runs in (n, 0):
        objs = []
        for src in [HERE / "arm_main.c", EXAMPLE / "board.c", EXAMPLE / spec.startup,
                    *impl.sources]:
            obj = build / f"{board}-{impl.label}-{runs}-{src.stem}.o"
            sh([f"{spec.cross}gcc", *arch, *STRICT, OPT, "-ffunction-sections",
                "-fdata-sections", f"-DBENCH_RUNS={runs}U", *impl.defines, "-I", str(build),
                "-I", str(HERE), "-I", str(EXAMPLE), "-c", "-o", str(obj), str(src)])
            objs.append(obj)
        elf = build / f"{board}-{impl.label}-{runs}.elf"
        sh([f"{spec.cross}gcc", *arch, "-nostartfiles", "-L", str(EXAMPLE / "boards"), "-T",
            spec.ldscript, "-Wl,--gc-sections", "-o", str(elf), *map(str, objs)])
        proc = subprocess.run(
            ["timeout", "600", spec.qemu, "-M", spec.machine, "-nographic", "-monitor",
             "none", "-serial", "none", "-semihosting-config", "enable=on,target=native",
             "-bios", "none", "-plugin", str(plugin), "-d", "plugin", "-kernel", str(elf)],
            capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"bench: QEMU run of {elf.name} failed:\n{proc.stdout}{proc.stderr}")
        counts.append(int(re.search(r"insns: (\d+)", proc.stdout + proc.stderr).group(1)))
    model_obj = build / f"{board}-{impl.label}-{n}-{impl.model_source.stem}.o"
    return (counts[0] - counts[1]) / n, section_sizes(model_obj, spec.cross)


def section_sizes(obj: Path, cross: str = "arm-none-eabi-") -> dict:
    """flash (text + rodata + data), code (text) and static RAM (data + bss) of an object."""
    sizes = {"flash": 0, "code": 0, "ram": 0}
    for line in sh([f"{cross}size", "-A", "-d", str(obj)]).stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            kind = parts[0].lstrip(".").split(".")[0]
            kind = {"srodata": "rodata", "sdata": "data", "sbss": "bss"}.get(kind, kind)
            if kind in ("text", "rodata", "data"):
                sizes["flash"] += int(parts[1])
            if kind == "text":
                sizes["code"] += int(parts[1])
            if kind in ("data", "bss"):
                sizes["ram"] += int(parts[1])
    return sizes


def bench_model(net: Network, images: np.ndarray, build: Path, plugin: Path,
                boards: tuple[str, ...] = ("mps2-an385",), source: str = "mnist") -> list[dict]:
    """Both implementations of `net`: instructions per inference (host, each board), flash,
    code and static RAM of the model object per board."""
    expected = golden.run(net, images)
    files = mcu.render_files(net, vectors.make(net, images), net.name, board="mps2-an385")
    out = build / net.name
    for path, data in files.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(data)
    (out / "bench_images.h").write_text(render(HERE / "images.h.j2", images=images,
                                               n_out=net.n_outputs, source=source))
    (out / "dense_model.c").write_text(render(HERE / "dense_model.c.j2", **dense_view(net),
                                              banner=lambda h: f"bench baseline from {h}"))
    model_c = out / f"{net.name}_model.c"
    impls = [Impl("event", [HERE / "event_glue.c", model_c], model_c,
                  (f'-DBENCH_MODEL_H="{net.name}_model.h"',
                   f"-DBENCH_MODEL_INFER={net.name}_infer")),
             Impl("dense", [out / "dense_model.c"], out / "dense_model.c")]
    view = mcu_view.build(net, vectors.make(net, images[:1]), net.name, board="mps2-an385")
    rows = []
    for impl in impls:
        row = {"impl": impl.label, "host": host_counts(impl, out, net, images, expected),
               "const": view["memory"].weights + view["memory"].tables,
               "weights": view["memory"].weights, "tables": view["memory"].tables, "sizes": {}}
        for board in boards:
            row[board], row["sizes"][board] = target_counts(impl, out, len(images), plugin,
                                                            board)
        rows.append(row)
    hidden = sum(math.prod(i.out_shape) for layer, i in zip(net.layers, net.info)
                 if isinstance(layer, SPIKING))
    rows[0]["spikes"] = float(expected.spike_counts.sum(axis=1).mean()) / hidden
    return rows


def stratified(dataset: str, n: int) -> np.ndarray:
    """n test images of `dataset` as [n, pixels] bytes, class-stratified (ttfs.sdk.vectors)."""
    from ttfs.sdk.data import load_dataset
    data = load_dataset(dataset)
    flat = data.test_images.reshape(len(data.test_images), -1)
    return flat[vectors.select_images(flat, data.test_labels, n)]


def comparison(args: argparse.Namespace, build: Path, plugin: Path) -> None:
    """The event-driven C against the dense int8 loop for the mnist5k MLP and CNN (M3)."""
    images = stratified("mnist5k", args.images)
    try:
        import torch  # noqa: F401 -- the trainer's dependency
        trained = not args.random
    except ImportError:
        trained = False
    source = "trained (runs/bench-mcu-*, mnist5k, 8-bit)" if trained else \
        "random weights, thresholds calibrated to ~15 % firing"
    print(f"models: {source}; inputs: {args.images} class-stratified mnist5k test images; -O2 "
          "for both; Cortex-M3 = mps2-an385 under QEMU 7.2\n")
    print("| model | implementation | instr/inference host x86-64 | instr/inference "
          "Cortex-M3 | flash B (model .o) | weights+tables B | static RAM B |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for arch in ARCHS:
        net = trained_model(arch) if trained else random_model(arch, images[:8])
        rows = bench_model(net, images, build, plugin, source="mnist5k test")
        for row in rows:
            sizes = row["sizes"]["mps2-an385"]
            print(f"| {arch} | {row['impl']} | {row['host']:,.0f} | {row['mps2-an385']:,.0f} | "
                  f"{sizes['flash']:,} | {row['const']:,} | {sizes['ram']:,} |")
        ev, de = rows
        print(f"| {arch} | **event / dense** | **{ev['host'] / de['host']:.2f}x** | "
              f"**{ev['mps2-an385'] / de['mps2-an385']:.2f}x** | "
              f"{ev['sizes']['mps2-an385']['flash'] - ev['const']:+,} vs weights+tables | | "
              f"spikes/neuron {ev['spikes']:.3f} |")


#: Boards of the record table and the clock each runs at on its real part (MHz): the
#: micro:bit's nRF51822, the MPS2 FPGA image, a SiFive FE310 (HiFive1), a CH32V003 (RV32EC).
RECORD_BOARDS = {"microbit": 16, "mps2-an385": 25, "sifive_e": 320, "sifive_e-rv32ec": 48}
#: The anchor: BitNetMCU on a CH32V003 (4-bit QAT, 16x16 MNIST input).
BITNETMCU = {"accuracy": 99.02, "model_kb": 12.3}


def record(args: argparse.Namespace, build: Path, plugin: Path) -> None:
    """The tiny-model record table of a run (QAT weight bits from its config): integer
    accuracy on the whole test set, flash (weights / tables / code) and RAM (scratch + worst
    stack) on the Cortex-M0 board, instructions per inference on M0, M3, RV32IMC and RV32EC,
    latency at each part's clock, and event / dense."""
    import json

    from ttfs.codegen import mcu_check
    from ttfs.sdk.data import load_dataset
    from ttfs.sdk.floatnet import load_float_network
    from ttfs.sdk.quantize import quantize
    run = Path(args.record)
    config = json.loads((run / "config.json").read_text())
    dataset = config["dataset"]
    net = quantize(load_float_network(run), name="tiny")
    data = load_dataset(dataset)
    flat = data.test_images.reshape(len(data.test_images), -1)
    classes = np.concatenate([golden.run(net, flat[i:i + 1000]).classes
                              for i in range(0, len(flat), 1000)])
    accuracy = 100.0 * float(np.mean(classes == data.test_labels))
    images = flat[vectors.select_images(flat, data.test_labels, args.images)]
    ev, de = bench_model(net, images, build, plugin, tuple(RECORD_BOARDS),
                         source=f"{dataset} test")
    files = mcu.render_files(net, vectors.make(net, images[:1]), net.name, board="microbit")
    src = build / "stack-src"
    for path, data_bytes in files.items():
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_bytes(data_bytes)
    stack = mcu_check.measure_stack(src / "tiny_model.c", src, mcu_view.BOARDS["microbit"],
                                    build / "stack", "tiny")
    m0 = ev["sizes"]["microbit"]
    code = m0["code"]
    layer_table = m0["flash"] - ev["const"] - code
    print(f"run: {run} ({dataset}, arch {config.get('arch')}, {net.weight_bits}-bit weights, "
          f"T = {net.T}); {len(flat):,} test images for the accuracy, {args.images} "
          "class-stratified ones for the instruction counts; -O2\n")
    print("| | this SDK (TTFS SNN, event-driven C) | BitNetMCU (CH32V003) |")
    print("|---|---:|---:|")
    print(f"| test accuracy, integer model | {accuracy:.2f} % | {BITNETMCU['accuracy']:.2f} % |")
    print(f"| flash: weights + tables + layer table + code (Cortex-M0) | {ev['weights']:,} + "
          f"{ev['tables']:,} + {layer_table:,} + {code:,} = **{m0['flash']:,} B "
          f"({m0['flash'] / 1024:.1f} KiB)** | {BITNETMCU['model_kb']} KB |")
    print(f"| RAM: static scratch + worst-case stack (M0) | {m0['ram']:,} + {stack['bytes']} = "
          f"**{m0['ram'] + stack['bytes']:,} B** | |")
    for board, mhz in RECORD_BOARDS.items():
        spec = mcu_view.BOARDS[board]
        print(f"| instructions/inference {spec.cpu} ({board}) | {ev[board]:,.0f} "
              f"(dense {de[board]:,.0f}: {ev[board] / de[board]:.2f}x); "
              f"{1e3 * ev[board] / (mhz * 1e6):.2f} ms at {mhz} MHz and 1 instr/cycle | |")
    print(f"| spikes per hidden neuron | {ev['spikes']:.3f} | |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=20, help="test images per measurement")
    p.add_argument("--random", action="store_true", help="random calibrated weights")
    p.add_argument("--record", metavar="RUN", default=None,
                   help="the tiny-model record table of run directory RUN instead")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ttfs-bench-mcu-") as tmp:
        build = Path(tmp)
        plugin = build / "libinsn_count.so"
        sh(["gcc", "-shared", "-fPIC", "-O2", "-o", str(plugin), str(HERE / "insn_count.c")])
        (record if args.record else comparison)(args, build, plugin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
