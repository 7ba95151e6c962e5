"""MCU target: C99 firmware that is bit-exact with the golden simulator, plus a Cortex-M example.

`emit(ctx)` writes into `ctx.out`:

- `<name>_model.h`, `<name>_model.c`: weights and tables as `static const` arrays, the layer
  sequence and the scratch buffers, the entry points `<name>_infer` and `<name>_infer_trace`;
- `ttfs.h`: the hand-written event-driven runtime (a copy of `firmware/runtime/ttfs.h`);
- `<name>_vectors.h`: golden vectors for the board (classes, scores, spike counts, SOPs and a
  checksum of every layer's spike times);
- `README.md`: how to add the files to a project, the memory the model needs, the API;
- `example/`: startup code, linker scripts and a Makefile for QEMU Cortex-M boards
  (`make -C OUT/example BOARD=mps2-an385 run`), and `host/harness.c` for the host check.

`verify(out)` compiles and runs it all against `out/vectors.npz` (see `ttfs.codegen.mcu_check`).
Options (`ctx.options`): `board` -- the default board of the example (else the smallest of
`microbit`, `mps2-an385` that holds the model and its vectors).
"""

from __future__ import annotations

import json
import tempfile
from importlib import resources
from pathlib import Path

from ttfs.codegen import mcu_check, mcu_view, tools
from ttfs.codegen.jinja_env import render
from ttfs.codegen.targets import (ExportContext, ExportError, Report, reject_options,
                             resolve_build_dir, take_vectors)
from ttfs.sdk import ir
from ttfs.sdk import vectors as vectors_mod

#: Hand-written files copied into the output: package path -> output path.
STATIC_FILES = {
    "runtime/ttfs.h": "ttfs.h",
    "runtime/ttfs_stats.h": "ttfs_stats.h",
    "example/board.c": "example/board.c",
    "example/board.h": "example/board.h",
    "example/board_arm.c": "example/board_arm.c",
    "example/board_riscv.c": "example/board_riscv.c",
    "example/boards/sections.ld": "example/boards/sections.ld",
    **{f"example/boards/{b.ldscript}": f"example/boards/{b.ldscript}"
       for b in mcu_view.BOARDS.values()},
}
#: Templates rendered into the output: template -> output path (`{name}` substituted).
TEMPLATES = {
    "model.h.j2": "{name}_model.h",
    "model.c.j2": "{name}_model.c",
    "vectors.h.j2": "{name}_vectors.h",
    "README.md.j2": "README.md",
    "example/main.c.j2": "example/main.c",
    "example/Makefile.j2": "example/Makefile",
    "host/harness.c.j2": "host/harness.c",
}


def check_name(name: str) -> str:
    """`name` if it can prefix C symbols, else ExportError (before any template sees it)."""
    try:
        return ir.check_identifier(name, "--name")
    except ir.TTFSFormatError as exc:
        raise ExportError(str(exc)) from None


def render_files(net: ir.Network, vectors: vectors_mod.Vectors, name: str, *,
                 board: str | None = None, measure_stack: bool = False) -> dict[str, bytes]:
    """Every output file of the target (relative path -> bytes), rendered in memory. With
    `measure_stack`, `<name>_model.c` is compiled for the example's board first (when its
    compiler is installed) and the header states the worst-case stack and the code size."""
    view = mcu_view.build(net, vectors, check_name(name),
                          board=None if board == "none" else board)
    view.update(stack=None, stack_missing="not requested", code_estimate="about 1,500-3,500")
    package = resources.files("ttfs.firmware")
    static = {out: package.joinpath(source).read_bytes() for source, out in STATIC_FILES.items()}

    def rendered() -> dict[str, bytes]:
        return {out.format(name=name): render(f"firmware/{template}", **view).encode()
                for template, out in TEMPLATES.items()}

    if measure_stack:
        view.update(_measure(rendered() | static, name, view["board"]))
    return rendered() | static


def _measure(files: dict[str, bytes], name: str, board: mcu_view.Board) -> dict:
    """{"stack": {...} | None, "stack_missing": why not, "code_estimate": bytes} of the model
    compiled for `board` (mcu_check.measure_stack) in a temporary folder."""
    if tools.find_tool(f"{board.cross}gcc") is None:
        return {"stack": None, "stack_missing": f"{board.cross}gcc not installed"}
    with tempfile.TemporaryDirectory(prefix="ttfs-mcu-stack-") as tmp:
        src = Path(tmp) / "src"
        for path in (f"{name}_model.c", f"{name}_model.h", "ttfs.h", "ttfs_stats.h"):
            (src / path).parent.mkdir(parents=True, exist_ok=True)
            (src / path).write_bytes(files[path])
        stack = mcu_check.measure_stack(src / f"{name}_model.c", src, board, Path(tmp) / "b",
                                        name)
    return {"stack": stack | {"board": f"{board.name} ({board.cpu})"},
            "code_estimate": f"{stack['code']:,}"}


def emit(ctx: ExportContext) -> None:
    """Write the MCU files into ctx.out; nothing is written when any check fails."""
    files = render_files(ctx.net, ctx.vectors, ctx.name, board=ctx.options.get("board"),
                         measure_stack=True)
    clashes = sorted(path for path in files if (ctx.out / path).exists())
    if clashes:
        raise ExportError(f"{ctx.out}: would overwrite {', '.join(clashes)}; export into an "
                          "empty folder")
    for path, data in files.items():
        target = ctx.out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _export_record(out: Path) -> dict:
    path = out / "export.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path}: cannot read ({exc})") from None


def verify(out: Path, *, progress: bool = True, build_dir: Path | None = None,
           sim: str | None = None, board: str | None = None, vectors: int | None = None,
           synth: bool = True) -> Report:
    """Check an exported folder: host gcc (strict, then ASan/UBSan) on the first
    `vectors` golden vectors (None: all), the example firmware under QEMU on `board` (None: the
    export's default; "none": host only) with at most that many of its compiled-in vectors and
    no more than the board's flash holds (`make VECTORS=n`), and the firmware's flash, RAM and
    stack. Builds go to `build_dir` (default
    `default_build_dir(out)`), never into `out`; `sim` is refused, `synth` does not apply."""
    reject_options("mcu", sim=sim)
    out = Path(out)
    try:
        net = ir.load(out / "model.ttfs")
    except ir.TTFSFormatError as exc:
        raise ExportError(f"{out}: needs the model.ttfs that ttfs-export writes ({exc})") from None
    record = _export_record(out)
    name = check_name(record.get("name", net.name))
    if not (out / f"{name}_model.c").is_file():
        raise ExportError(f"{out}: no {name}_model.c; is this an MCU export?")
    golden = take_vectors(vectors_mod.load(out / "vectors.npz"), vectors)
    board = board or record.get("options", {}).get("board") or mcu_check.default_board(out)
    if board != "none" and board not in mcu_view.BOARDS:
        raise ExportError(f"--board: {board!r} is not supported; choose one of "
                          f"{sorted(mcu_view.BOARDS)} or 'none'")
    build = resolve_build_dir(out, build_dir)
    on_board = None
    if board != "none":   # as many of the compiled-in vectors as this board's flash holds
        on_board = mcu_view.build(net, golden, name, board=board)["vectors"]["count"]
    report = Report("mcu")
    mcu_check.check_all(net, golden, out, name, None if board == "none" else board, report,
                        build, qemu_vectors=on_board, progress=progress)
    return report
