"""Checks of an exported MCU folder: host builds, the QEMU example, flash and RAM.

- Host: `host/harness.c` + `<name>_model.c` compiled by gcc with `-std=c99 -Wall -Wextra
  -Werror -pedantic`, then again with ASan/UBSan; every golden vector goes through it and its
  classes, scores, spike counts, SOPs and every layer's spike times are compared with the golden
  trace (`sdk.golden.first_divergence` names the first layer and neuron that differ).
- QEMU: `make -C OUT/example BOARD=<board> run` with a temporary build folder; the firmware
  checks its vectors itself and prints `N passed, M failed`.
- Size: `arm-none-eabi-size -A` of the model object and of the firmware.

Missing tools raise ExportError naming the tool.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codegen import tools
from codegen.mcu_view import BOARDS, trace_layout
from codegen.targets import ExportError, Report
from sdk import golden
from sdk.ir import Network
from sdk.vectors import Vectors

STRICT = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
HOST_BUILDS = {
    "gcc": (*STRICT, "-O2"),
    "gcc asan+ubsan": (*STRICT, "-O1", "-g", "-fsanitize=address,undefined",
                       "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"),
}
QEMU_TIMEOUT_S = 300
#: Every program verify runs; all are looked up before the first build.
TOOLS = ("gcc", "make", "arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm", "timeout")


def tool(name: str) -> str:
    try:
        return tools.require_tool(name)
    except tools.ToolMissing as exc:
        raise ExportError(str(exc)) from None


def _run(cmd: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, **kwargs)
    if proc.returncode != 0 and what:
        err = proc.stderr.decode(errors="replace") if isinstance(proc.stderr, bytes) \
            else proc.stderr
        raise ExportError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                          f"{err.strip()[-3000:]}")
    return proc


def default_board(out: Path) -> str:
    """The BOARD default written into OUT/example/Makefile."""
    match = re.search(r"^BOARD \?= (\S+)$", (out / "example" / "Makefile").read_text(), re.M)
    if match is None:
        raise ExportError(f"{out}/example/Makefile: no 'BOARD ?=' line")
    return match.group(1)


# ---------------------------------------------------------------------------------------------
# host


def build_host(out: Path, name: str, exe: Path, flags: tuple[str, ...]) -> Path:
    """Compile the host harness of an exported folder into `exe`."""
    cmd = [tool("gcc"), *flags, "-I", str(out), "-o", str(exe),
           str(out / "host" / "harness.c"), str(out / f"{name}_model.c")]
    _run(cmd, f"host build ({' '.join(flags)})")
    return exe


def result_dtype(net: Network) -> np.dtype:
    """The record the host harness writes per input (see host/harness.c)."""
    n_trace = sum(n for _, n in trace_layout(net))
    return np.dtype([("cls", "<i4"), ("scores", "<i4", (net.n_outputs,)),
                     ("input_spikes", "<u4"),
                     ("spikes", "<u4", (len(net.spiking_layers),)), ("sops", "<u4"),
                     ("trace", "<u2", (n_trace,))])


def run_host(exe: Path, net: Network, inputs: np.ndarray) -> golden.Trace:
    """Run the harness on uint8 inputs [N, n_in]; its results as a golden.Trace."""
    inputs = np.ascontiguousarray(inputs, dtype=np.uint8)
    proc = _run([str(exe)], f"host run of {exe.name}", input=inputs.tobytes())
    dtype = result_dtype(net)
    if len(proc.stdout) != dtype.itemsize * len(inputs):
        raise ExportError(f"host run of {exe.name}: {len(proc.stdout)} bytes of results, "
                          f"expected {dtype.itemsize * len(inputs)}")
    rec = np.frombuffer(proc.stdout, dtype=dtype)
    return as_trace(net, rec)


def as_trace(net: Network, rec: np.ndarray) -> golden.Trace:
    """A golden.Trace (flat spike times per layer) from harness records."""
    n = len(rec)
    blocks, offset = {}, 0
    for block, size in trace_layout(net):
        blocks[block] = rec["trace"][:, offset:offset + size].astype(np.int32)
        offset += size
    names = tuple(name for name, _ in trace_layout(net) if name != "input")
    return golden.Trace(
        layer_names=names,
        times=tuple(blocks[name] for name in names),
        input_times=blocks.get("input"),
        scores=rec["scores"].astype(np.int32),
        classes=rec["cls"].astype(np.int32),
        spike_counts=rec["spikes"].astype(np.int32).reshape(n, -1),
        input_spikes=rec["input_spikes"].astype(np.int32),
        sops=rec["sops"].astype(np.int64),
    )


@dataclass(frozen=True)
class Comparison:
    """Samples that match the golden trace in every field, and the first difference."""

    passed: int
    failed: int
    first: str | None


def compare(expected: golden.Trace, got: golden.Trace) -> Comparison:
    """Compare every field of two traces sample by sample."""
    n = len(expected)
    bad = np.zeros(n, dtype=bool)
    fields = list(zip(expected.times, got.times))
    if expected.input_times is not None:
        fields.append((expected.input_times, got.input_times))
    fields += [(getattr(expected, key), getattr(got, key)) for key in
               ("scores", "classes", "spike_counts", "input_spikes", "sops")]
    for a, b in fields:
        bad |= (np.asarray(a).reshape(n, -1) != np.asarray(b).reshape(n, -1)).any(axis=1)
    first = golden.first_divergence(expected, got)
    message = None if first is None else str(first)
    if message is None and bad.any():
        s = int(np.flatnonzero(bad)[0])
        for key in ("spike_counts", "input_spikes", "sops"):
            a = np.asarray(getattr(expected, key)).reshape(n, -1)[s]
            b = np.asarray(getattr(got, key)).reshape(n, -1)[s]
            if (a != b).any():
                message = f"first divergence in {key} of sample {s}: expected {a.tolist()}, " \
                          f"got {b.tolist()}"
                break
    return Comparison(int((~bad).sum()), int(bad.sum()), message)


def check_host(net: Network, vectors: Vectors, out: Path, name: str, build_dir: Path,
               flavour: str) -> Comparison:
    """Build the harness with HOST_BUILDS[flavour], run every vector, compare."""
    exe = build_host(out, name, build_dir / f"harness-{flavour.replace(' ', '-')}",
                     HOST_BUILDS[flavour])
    return compare(vectors.trace, run_host(exe, net, vectors.inputs))


# ---------------------------------------------------------------------------------------------
# QEMU


@dataclass(frozen=True)
class QemuResult:
    """What the example firmware printed under QEMU, and its exit status."""

    board: str
    passed: int
    failed: int
    stack: int
    status: int
    output: str
    elf: Path


def build_firmware(out: Path, board: str, build_dir: Path) -> Path:
    """`make -C OUT/example BOARD=board BUILD=build_dir`; returns the ELF file."""
    if board not in BOARDS:
        raise ExportError(f"board {board!r} is not supported; choose one of {sorted(BOARDS)}")
    _run([tool("make"), "-s", "-C", str(out / "example"), f"BOARD={board}",
          f"BUILD={build_dir}"], f"firmware build for {board}")
    return build_dir / "firmware.elf"


def run_qemu(out: Path, board: str, build_dir: Path) -> QemuResult:
    """Build the example firmware for `board` and run it under QEMU (with a timeout)."""
    elf = build_firmware(out, board, build_dir)
    proc = _run([tool("make"), "-s", "-C", str(out / "example"), f"BOARD={board}",
                 f"BUILD={build_dir}", f"TIMEOUT={QEMU_TIMEOUT_S}", "run"], "", text=True)
    text = proc.stdout + proc.stderr
    match = re.search(r"(\d+) passed, (\d+) failed", text)
    stack = re.search(r"stack used: (\d+) bytes", text)
    if match is None or stack is None:
        raise ExportError(f"QEMU {board}: the firmware printed no result (exit "
                          f"{proc.returncode}):\n{text.strip()[-2000:]}")
    return QemuResult(board, int(match.group(1)), int(match.group(2)), int(stack.group(1)),
                      proc.returncode, text, elf)


# ---------------------------------------------------------------------------------------------
# size


def section_sizes(path: Path) -> dict[str, int]:
    """Bytes per section kind (text, rodata, data, bss) from `arm-none-eabi-size -A`."""
    proc = _run([tool("arm-none-eabi-size"), "-A", "-d", str(path)], "arm-none-eabi-size",
                text=True)
    sizes = {"text": 0, "rodata": 0, "data": 0, "bss": 0, "stack": 0, "vectors": 0}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            kind = parts[0][1:].split(".")[0]
            if kind in sizes:
                sizes[kind] += int(parts[1])
    return sizes


def memory(model_obj: Path, elf: Path, stack_used: int) -> dict[str, int]:
    """Flash and RAM of the model (its object: weights, tables, runtime code) and firmware."""
    model = section_sizes(model_obj)
    fw = section_sizes(elf)
    return {
        "model_flash": model["text"] + model["rodata"] + model["data"],
        "model_ram": model["data"] + model["bss"],
        "firmware_flash": fw["text"] + fw["data"],
        "firmware_ram": fw["data"] + fw["bss"] + stack_used,
        "stack_used": stack_used,
    }


# ---------------------------------------------------------------------------------------------
# everything


def check_all(net: Network, vectors: Vectors, out: Path, name: str, board: str,
              report: Report, *, progress: bool = True) -> None:
    """Host builds, QEMU run and sizes into `report` (the body of `mcu.verify`)."""
    def step(text: str) -> None:
        if progress:
            print(f"mcu: {text} ...", file=sys.stderr, flush=True)

    say = report.lines.append

    for program in TOOLS:
        tool(program)
    with tempfile.TemporaryDirectory(prefix="ttfs-mcu-") as tmp:
        tmp = Path(tmp)
        for flavour in HOST_BUILDS:
            step(f"host {flavour}: build and run {len(vectors)} vectors")
            result = check_host(net, vectors, out, name, tmp, flavour)
            report.passed += result.passed
            report.failed += result.failed
            report.first_mismatch = report.first_mismatch or (
                result.first and f"host {flavour}: {result.first}")
            say(f"host {flavour:<16} {result.passed:5d} passed {result.failed:5d} failed")
        step(f"qemu {board}: build the example project and run it")
        q = run_qemu(out, board, tmp / "arm")
        report.passed += q.passed
        report.failed += q.failed + (1 if q.status != 0 and q.failed == 0 else 0)
        if q.failed and report.first_mismatch is None:
            report.first_mismatch = f"qemu {board}: " + next(
                (line for line in q.output.splitlines() if line.startswith("mismatch")), "")
        cpu = BOARDS[board].cpu
        say(f"qemu {board} ({cpu}) {q.passed:5d} passed {q.failed:5d} failed (exit {q.status})")
        mem = memory(tmp / "arm" / f"{name}_model.o", q.elf, q.stack)
        say(f"model    flash {mem['model_flash']:8d} B  RAM {mem['model_ram']:8d} B "
            f"({name}_model.o: weights, tables, runtime code, scratch)")
        say(f"firmware flash {mem['firmware_flash']:8d} B  RAM {mem['firmware_ram']:8d} B "
            f"(with golden vectors; stack used {mem['stack_used']} B)")
        report.data.update(mem)
        report.data.update({"board": board, "cpu": cpu, "qemu_vectors": q.passed + q.failed,
                            "host_vectors": len(vectors)})
