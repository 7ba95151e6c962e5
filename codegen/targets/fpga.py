"""FPGA target: Verilog spike-time engines, `.mem` weight images, cocotb testbench.

The hand-written RTL (`hdl_templates/rtl/ttfs_*.sv`) holds the logic. The target is split like
the MCU target:

- `ttfs.codegen.fpga_view`: `plan` -- which engine runs each layer, every parameter and width, the
  ROM images, and the top's port/instance lists (`top_view`);
- `ttfs.codegen.fpga_cycles`: the exact cycle model (`predict_cycles`), checked on every vector;
- `ttfs.codegen.fpga_check`: lint, simulation (cocotb on Verilator/Icarus), synthesis, `verify`.

This module writes the files (`emit`) and re-exports the public names used by the CLIs and
benches. Options: see `ttfs.codegen.fpga_view` (`num_pe`, `lanes`, `acc_bits`),
`ttfs.codegen.fpga_fit` (`device`: pick the fastest num_pe/lanes that fits the part) and
`ttfs.codegen.fpga_check` (`sim`, `synth`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from importlib import resources
from pathlib import Path

from ttfs.codegen import fpga_fit
from ttfs.codegen.fpga_check import lint, simulate, synthesize, verify, yosys_check  # noqa: F401
from ttfs.codegen.fpga_cycles import dense_cycles, predict_cycles, synaptic_ops
from ttfs.codegen.fpga_view import DEFAULT_LANES, DEFAULT_NUM_PE, MIN_BRAM_BITS, MIN_BRAM_DEPTH, \
    Plan, bits_for, plan, top_view  # noqa: F401
from ttfs.codegen.jinja_env import render
from ttfs.codegen.targets import ExportContext
from ttfs.sdk import vectors as vectors_mod

RTL_MODULES = ("ttfs_event_arbiter", "ttfs_input", "ttfs_pe", "ttfs_integrator", "ttfs_scan",
               "ttfs_layer", "ttfs_pool", "ttfs_output_layer", "ttfs_pnr_io")
TB_FILES = ("ttfs_tb.py", "run.py")


def build_key(p: Plan) -> str:
    """What determines a simulator build: every parameter, not the ROM contents."""
    view = asdict(p)
    for key in ("mems", "hash"):
        view.pop(key)
    view["rtl"] = {m: _rtl_text(m) for m in RTL_MODULES}
    return hashlib.sha256(json.dumps(view, sort_keys=True).encode()).hexdigest()[:16]


def _rtl_text(module: str) -> str:
    return resources.files("ttfs.hdl_templates").joinpath(f"rtl/{module}.sv").read_text()


def emit(ctx: ExportContext) -> None:
    """Write rtl/ (hand-written modules, <name>_top.sv, .mem images), tb/ and README.md."""
    options = dict(ctx.options)
    if options.get("device"):
        options = dict(options, **fpga_fit.choose(ctx.net, ctx.vectors, options["device"],
                                                   options, ctx.name))
    p = plan(ctx.net, ctx.name, options)
    out = Path(ctx.out)
    rtl, tb = out / "rtl", out / "tb"
    rtl.mkdir(parents=True, exist_ok=True)
    tb.mkdir(parents=True, exist_ok=True)
    for module in RTL_MODULES:
        (rtl / f"{module}.sv").write_text(_rtl_text(module))
    view = top_view(p)
    (rtl / f"{p.top}.sv").write_text(render("hdl/top.sv.j2", **view))
    (rtl / f"{p.name}_pnr.sv").write_text(render("hdl/pnr.sv.j2", **view))
    for fname, (width, words) in p.mems.items():
        (rtl / fname).write_text(render("hdl/rom.mem.j2", width=width, words=words, hash=p.hash))
    for fname in TB_FILES:
        text = resources.files("ttfs.hdl_templates").joinpath(f"tb/{fname}").read_text()
        (tb / fname).write_text(text)
    if not (out / "vectors.npz").exists():
        vectors_mod.save(ctx.vectors, out / "vectors.npz")
    cycles = predict_cycles(p, ctx.vectors)
    design = {
        "name": p.name, "hash": p.hash, "top": p.top, "build_key": build_key(p),
        "sources": [f"{m}.sv" for m in RTL_MODULES if m != "ttfs_pnr_io"] + [f"{p.top}.sv"],
        "device": options.get("device"), "num_pe": options.get("num_pe", DEFAULT_NUM_PE),
        "mems": sorted(p.mems), "lanes": p.lanes, "pixels": p.pixels, "T": p.T,
        "n_out": p.out.channels, "out_bits": p.out_bits,
        "hidden": [s.name for s in p.hidden],
        "stages": [{"name": s.name, "kind": s.kind, "lanes": s.lanes, "groups": s.groups,
                    "positions": s.positions, "cost": s.cost, "ways": s.ways,
                    "out_ways": s.out_ways, "fire_serial": s.fire_serial, "taps": s.taps}
                   for s in p.stages],
        "out_ways": {s.name: s.out_ways for s in p.hidden},
        "predicted_cycles": [int(c) for c in cycles],
        "dense_cycles": dense_cycles(p),
        "synaptic_ops": [int(c) for c in synaptic_ops(p, ctx.vectors)],
        "estimates": fpga_fit.per_device(p),
        "rom_bits": sum(width * len(words) for fname, (width, words) in p.mems.items()
                        if fname.endswith("_weight.mem")),
    }
    (tb / "design.json").write_text(json.dumps(design, indent=1) + "\n")
    (out / "README.md").write_text(render("hdl/README.md.j2", p=p, design=design,
                                          n_vectors=len(ctx.vectors), margin=fpga_fit.MARGIN,
                                          min_bram=(MIN_BRAM_BITS, MIN_BRAM_DEPTH)))
