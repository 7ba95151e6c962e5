"""Checks of an exported MCU folder: host builds, the QEMU example, flash, RAM and stack.

- Host: `host/harness.c` + `<name>_model.c` compiled by gcc with `-std=c99 -Wall -Wextra
  -Werror -pedantic`, then again with ASan/UBSan; every golden vector goes through it and its
  classes, scores, spike counts, SOPs and every layer's spike times are compared with the golden
  trace (`ttfs.sdk.golden.first_divergence` names the first layer and neuron that differ).
- QEMU: `make -C OUT/example BOARD=<board> BUILD=<build folder> run` (Cortex-M boards under
  qemu-system-arm, RISC-V boards under qemu-system-riscv32); the firmware checks its vectors
  itself and prints `N passed, M failed`.
- Size and stack: `<cross>size -A` of the model object and of the firmware; the firmware's
  stack high-water mark, and the worst-case stack of `<name>_infer` from gcc's call graph
  (`-fcallgraph-info=su`, `stack_usage`).

Every build product goes to the build folder, never into OUT. Missing tools raise
ttfs.codegen.tools.ToolMissing (exit 3); generated code that does not compile is a case with status
"error"; a model too large for the board is an ExportError.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ttfs.codegen import tools
from ttfs.codegen.mcu_view import BOARDS, Board, trace_layout
from ttfs.codegen.targets import ExportError, Report
from ttfs.sdk import golden
from ttfs.sdk.ir import Network
from ttfs.sdk.vectors import Vectors

STRICT = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
HOST_BUILDS = {
    "gcc": (*STRICT, "-O2"),
    "gcc asan+ubsan": (*STRICT, "-O1", "-g", "-fsanitize=address,undefined",
                       "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"),
}
QEMU_TIMEOUT_S = 300


class BuildFailed(RuntimeError):
    """Generated code that a compiler refused (a bug in the generator: a case "error")."""


def tool(name: str) -> str:
    return tools.require_tool(name)


def board_tools(board: Board | None) -> tuple[str, ...]:
    """Every program a verify on `board` (None: host only) runs."""
    host = ("gcc", "make", "timeout")
    if board is None:
        return host
    return (*host, f"{board.cross}gcc", f"{board.cross}size", board.qemu)


def _run(cmd: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, **kwargs)
    if proc.returncode != 0 and what:
        err = proc.stderr.decode(errors="replace") if isinstance(proc.stderr, bytes) \
            else proc.stderr
        text = f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{err.strip()[-3000:]}"
        if "overflowed" in err:
            raise ExportError(text)
        raise BuildFailed(text)
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
    divergence: golden.Divergence | None = None


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
    return Comparison(int((~bad).sum()), int(bad.sum()), message, first)


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


def build_firmware(out: Path, board: str, build_dir: Path, vectors: int | None = None) -> Path:
    """`make -C OUT/example BOARD=board BUILD=build_dir [VECTORS=n]`; returns the ELF file."""
    if board not in BOARDS:
        raise ExportError(f"board {board!r} is not supported; choose one of {sorted(BOARDS)} "
                          "or 'none'")
    _run([tool("make"), "-s", "-C", str(out / "example"), f"BOARD={board}",
          f"BUILD={build_dir}", *([f"VECTORS={vectors}"] if vectors else [])],
         f"firmware build for {board}")
    return build_dir / "firmware.elf"


def run_qemu(out: Path, board: str, build_dir: Path, vectors: int | None = None) -> QemuResult:
    """Build the example firmware for `board` and run it under QEMU (with a timeout)."""
    elf = build_firmware(out, board, build_dir, vectors)
    proc = _run([tool("make"), "-s", "-C", str(out / "example"), f"BOARD={board}",
                 f"BUILD={build_dir}", *([f"VECTORS={vectors}"] if vectors else []),
                 f"TIMEOUT={QEMU_TIMEOUT_S}", "run"], "", text=True)
    text = proc.stdout + proc.stderr
    match = re.search(r"(\d+) passed, (\d+) failed", text)
    stack = re.search(r"stack used: (\d+) bytes", text)
    if match is None or stack is None:
        raise BuildFailed(f"QEMU {board}: the firmware printed no result (exit "
                          f"{proc.returncode}):\n{text.strip()[-2000:]}")
    return QemuResult(board, int(match.group(1)), int(match.group(2)), int(stack.group(1)),
                      proc.returncode, text, elf)


# ---------------------------------------------------------------------------------------------
# size and stack


def section_sizes(path: Path, board: Board) -> dict[str, int]:
    """Bytes per section kind (text, rodata, data, bss; RISC-V small-data sections included)
    from `<cross>size -A`."""
    size = f"{board.cross}size"
    proc = _run([tool(size), "-A", "-d", str(path)], size, text=True)
    sizes = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    small = {"srodata": "rodata", "sdata": "data", "sbss": "bss"}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            kind = parts[0][1:].split(".")[0]
            kind = small.get(kind, kind)
            if kind in sizes:
                sizes[kind] += int(parts[1])
    return sizes


def memory(model_obj: Path, elf: Path, stack_used: int, board: Board) -> dict[str, int]:
    """Flash and RAM of the model (its object: weights, tables, runtime code) and firmware."""
    model = section_sizes(model_obj, board)
    fw = section_sizes(elf, board)
    return {
        "model_flash": model["text"] + model["rodata"] + model["data"],
        "model_code": model["text"],
        "model_ram": model["data"] + model["bss"],
        "firmware_flash": fw["text"] + fw["rodata"] + fw["data"],
        "firmware_ram": fw["data"] + fw["bss"] + stack_used,
        "stack_used": stack_used,
    }


_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


def stack_usage(callgraph: str, root: str) -> tuple[int, list[str]]:
    """Worst-case stack bytes of `root` from a gcc `-fcallgraph-info=su` file (VCG text): the
    largest sum of static frame sizes along a call path (the runtime has no recursion and no
    dynamic frames), and the external functions on those paths whose frames are not counted
    (memcpy, memset: a few words each in newlib-nano and picolibc)."""
    frames, callees = {}, {}
    for title, label in _NODE.findall(callgraph):
        match = re.search(r"(\d+) bytes \(static\)", label)
        frames[title] = int(match.group(1)) if match else None
    for src, dst in _EDGE.findall(callgraph):
        callees.setdefault(src, set()).add(dst)
    external: set[str] = set()

    def worst(fn: str, depth: int = 0) -> int:
        if depth > 64:
            raise ExportError(f"stack_usage: call chain of {root} deeper than 64 (recursion?)")
        if frames.get(fn) is None:
            external.add(fn.split(":")[-1])
            return 0
        return frames[fn] + max((worst(c, depth + 1) for c in callees.get(fn, ())), default=0)

    if root not in frames:
        raise ExportError(f"stack_usage: {root} is not in the call graph")
    return worst(root), sorted(external)


def measure_stack(model_c: Path, include: Path, board: Board, build_dir: Path,
                  name: str) -> dict:
    """Compile `model_c` for `board` (-O2, as the example does) with gcc's call-graph output
    and return {"bytes": worst case of <name>_infer_trace, "calls": external functions,
    "compiler": version, "code": bytes of machine code in the object}."""
    gcc = f"{board.cross}gcc"
    build_dir.mkdir(parents=True, exist_ok=True)
    obj = build_dir / f"{name}_model_stack.o"
    _run([tool(gcc), *board.arch_flags.split(), board.libc, *STRICT, "-O2", "-ffunction-sections",
          "-fdata-sections", "-fcallgraph-info=su", "-I", str(include), "-c", "-o", str(obj),
          str(model_c)], f"{gcc} stack measurement")
    graph = obj.with_suffix(".ci").read_text()
    worst, calls = max(stack_usage(graph, f"{name}_infer_trace"),
                       stack_usage(graph, f"{name}_infer"))
    return {"bytes": worst, "calls": calls, "compiler": tools.tool_version(gcc),
            "code": section_sizes(obj, board)["text"]}


# ---------------------------------------------------------------------------------------------
# everything


def check_all(net: Network, vectors: Vectors, out: Path, name: str, board: str | None,
              report: Report, build_dir: Path, *, qemu_vectors: int | None = None,
              progress: bool = True) -> None:
    """Host builds, the QEMU run on `board` (None: host only), sizes and stack into `report`
    (the body of `mcu.verify`)."""
    def step(text: str) -> None:
        if progress:
            print(f"mcu: {text} ...", file=sys.stderr, flush=True)

    say = report.lines.append
    spec = None if board is None else BOARDS[board]
    for program in board_tools(spec):
        tool(program)
    report.tools.update({"gcc": tools.tool_version("gcc"), "make": tools.tool_version("make")})
    for flavour in HOST_BUILDS:
        case = f"host {flavour}"
        step(f"{case}: build and run {len(vectors)} vectors")
        with report.timed(case):
            try:
                result = check_host(net, vectors, out, name, build_dir, flavour)
            except BuildFailed as exc:
                report.add_case(case, "error", message=str(exc).splitlines()[0])
                say(f"{case:<21} error: {exc}")
                continue
        report.add_case(case, "pass" if result.failed == 0 else "fail", passed=result.passed,
                        failed=result.failed, first_divergence=result.divergence,
                        message=result.first or "")
        say(f"{case:<21} {result.passed:5d} passed {result.failed:5d} failed")
    report.data.update({"host_vectors": len(vectors)})
    if spec is None:
        say("qemu: skipped (--board none)")
        return
    report.tools.update({f"{spec.cross}gcc": tools.tool_version(f"{spec.cross}gcc"),
                         spec.qemu: tools.tool_version(spec.qemu)})
    case = f"qemu {board}"
    step(f"{case}: build the example project and run it")
    fw_dir = build_dir / (board if qemu_vectors is None else f"{board}-{qemu_vectors}vectors")
    with report.timed(case):
        try:
            q = run_qemu(out, board, fw_dir, qemu_vectors)
        except BuildFailed as exc:
            report.add_case(case, "error", message=str(exc).splitlines()[0])
            say(f"{case} error: {exc}")
            return
    failed = q.failed + (1 if q.status != 0 and q.failed == 0 else 0)
    mismatch = next((line for line in q.output.splitlines() if line.startswith("mismatch")),
                    "" if q.status == 0 else f"exit status {q.status}")
    report.add_case(case, "pass" if failed == 0 else "fail", passed=q.passed, failed=failed,
                    message=mismatch)
    say(f"{case} ({spec.cpu}) {q.passed:5d} passed {q.failed:5d} failed (exit {q.status})")
    with report.timed("size and stack"):
        mem = memory(fw_dir / f"{name}_model.o", q.elf, q.stack, spec)
        stack = measure_stack(out / f"{name}_model.c", out, spec, build_dir / "stack", name)
    say(f"model    flash {mem['model_flash']:8d} B  RAM {mem['model_ram']:8d} B "
        f"({name}_model.o: weights, tables, {mem['model_code']} B runtime code, scratch)")
    say(f"firmware flash {mem['firmware_flash']:8d} B  RAM {mem['firmware_ram']:8d} B "
        f"(with golden vectors; stack used {mem['stack_used']} B)")
    say(f"stack of {name}_infer: {stack['bytes']} B worst case (gcc call graph"
        + (f", plus {', '.join(stack['calls'])}" if stack["calls"] else "") + ")")
    report.data.update(mem)
    report.data.update({"board": board, "cpu": spec.cpu, "qemu_vectors": q.passed + q.failed,
                        "stack_worst": stack["bytes"], "stack_calls": stack["calls"]})
