"""FPGA target: emitted Verilog checked by its cocotb bench on Verilator and Icarus.

Models sharing a shape share one simulator build: the bench reuses a build while the exported
parameters are equal (weights live in .mem files read at run time), so each (coding, PE count)
group of four random models (modes typical/saturate/silent/extreme) is exported with the
group's widest accumulator and built once per simulator.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from codegen import export_cli, verify_cli
from codegen.targets import ExportContext, ExportError, fpga
from sdk import ir, randnet, vectors
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


def _net(mode: str, coding: str, seed: int = 11, plan: str = "mlp"):
    wbits, kbits = CODING_BITS[coding]
    return randnet.random_network(seed, plan=plan, mode=mode, input_coding=coding,
                                  weight_bits=wbits, kernel_bits=kbits, name="rnd")


# Every coding meets every PE count once; each simulator runs each coding and three PE counts.
@pytest.mark.slow
@pytest.mark.parametrize("coding, num_pe, sim", [
    ("real", 1, "verilator"), ("real", 4, "icarus"), ("real", "all", "verilator"),
    ("ttfs", 1, "icarus"), ("ttfs", 4, "verilator"), ("ttfs", "all", "icarus")])
def test_random_models_bit_exact_and_cycles_exact(tmp_path, build_cache, sim, num_pe, coding):
    need_tool(SIM_TOOL[sim])
    nets = [_net(mode, coding) for mode in randnet.MODES]
    acc_bits = max(info.acc_bits for net in nets for info in net.info)
    lanes = {1: 1, 4: 4, "all": 16}[num_pe]
    outs = [_export(tmp_path / mode, net, num_pe=num_pe, lanes=lanes, acc_bits=acc_bits)
            for mode, net in zip(randnet.MODES, nets)]
    if sim == "verilator":
        assert fpga.lint(outs[0]) == "clean"
    for mode, out in zip(randnet.MODES, outs):
        res = fpga.simulate(out, sim, build_dir=build_cache)
        assert res["mismatches"] == 0, f"{mode}: {res['first_mismatch']}"
        assert res["cycles_predicted_ok"], f"{mode}: {res['cycles_first_wrong']}"
        assert res["passed"] and res["vectors"] == 6


@pytest.mark.slow
def test_tight_widths_lint_and_simulate(tmp_path, build_cache):
    """Per-layer minimal accumulator widths (no acc_bits option), odd lane count."""
    need_tool("iverilog")
    need_tool("verilator")
    out = _export(tmp_path / "tight", _net("typical", "real", seed=5), num_pe=3, lanes=5)
    assert fpga.lint(out) == "clean"
    res = fpga.simulate(out, "icarus", build_dir=build_cache, stress=False)
    assert res["passed"], res["first_mismatch"] or res["cycles_first_wrong"]


def _rewrite_mem(path: Path, change) -> None:
    """Apply `change(index, word) -> word` to every data line of a .mem file (line 0: banner)."""
    lines = path.read_text().splitlines()
    width = len(lines[1])
    words = [f"{change(i, int(w, 16)):0{width}x}"[-width:] for i, w in enumerate(lines[1:])]
    path.write_text("\n".join([lines[0], *words]) + "\n")


@pytest.mark.slow
def test_corrupted_weight_is_detected_and_named(tmp_path, build_cache):
    need_tool("iverilog")
    net = _net("saturate", "real")
    out = _export(tmp_path / "bad", net, num_pe="all", lanes=16)
    hidden = net.layers[-2]                      # the output layer's source
    times = vectors.load(out / "vectors.npz").trace.times[-1][0]
    j = int(np.flatnonzero((times < net.T) & (hidden.kernel[np.minimum(times, net.T - 1)] > 0))[0])
    # word j of the output weights holds lane p = weight[p][j]: flip bit 0 of output neuron 0's
    # weight from hidden neuron j, which spikes in sample 0 with a non-zero operand
    _rewrite_mem(out / "rtl" / f"{net.layers[-1].name}_weight.mem",
                 lambda i, w: w ^ 1 if i == j else w)
    res = fpga.simulate(out, "icarus", build_dir=build_cache, stress=False)
    assert res["mismatches"] >= 1 and not res["passed"]
    assert res["first_mismatch"].startswith("sample 0: first divergence at layer 'scores', "
                                            "neuron 0")

    # thresholds of the first hidden layer of a silent model all 1: its neurons fire -> the
    # mismatch is named at that layer, before the scores
    silent = _net("silent", "real")
    out2 = _export(tmp_path / "bad2", silent, num_pe=4, lanes=4)
    first = silent.spiking_layers[0].name
    _rewrite_mem(out2 / "rtl" / f"{first}_theta.mem", lambda i, w: 1)
    res = fpga.simulate(out2, "icarus", build_dir=build_cache, stress=False)
    assert f"first divergence at layer '{first}'" in res["first_mismatch"]


def test_emit_is_byte_reproducible(tmp_path):
    net = _net("typical", "ttfs")
    a, b = _export(tmp_path / "a", net), _export(tmp_path / "b", net)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    top = (a / "rtl" / "rnd_top.sv").read_text()
    assert net.content_hash in top.splitlines()[0] and "module rnd_top" in top


def test_cycle_model_hand_case():
    """mlp 16-12-8-5, P = 4 (slots 3, 2, 2), lanes 16, all-zero image, typical thresholds.

    input: one beat, no events -> 1; fc: 1 (end marker) + 3 slots * T = 8 steps, each 1 cycle
    unless a neuron fires; golden says which fire (bias only) -> computed below by hand formula.
    """
    net = _net("silent", "real")
    vec = vectors.make(net, np.zeros((1, 16), np.uint8))
    p = fpga.plan(net, "rnd", {"num_pe": 4, "lanes": 16})
    # silent: nothing fires anywhere, so every group costs 1 cycle: 1 (input beat)
    # + fc1: 4 (marker drain) + 1 (scan fill) + 3 slots * 8 steps
    # + fc2: 4 + 1 + 2 * 8
    # + output: 4 (marker drain) + 2 (slot readout) + 5 (argmax scan) = 62
    assert [layer.slots for layer in p.layers] == [3, 2, 2]
    assert fpga.MARKER_CYCLES == 4
    assert int(fpga.predict_cycles(p, vec)[0]) == 1 + (4 + 1 + 24) + (4 + 1 + 16) + (4 + 2 + 5)


def test_unsupported_layer_is_named(tmp_path):
    net = _net("typical", "real", plan="cnn")
    with pytest.raises(ExportError, match=r"layer 'conv0' \(conv2d\) is not supported"):
        _export(tmp_path / "cnn", net)
    assert not any((tmp_path / "cnn").iterdir())


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
                                              ({"num_pe": "many"}, "num_pe")])
def test_bad_options_are_refused(tmp_path, options, message):
    with pytest.raises(ExportError, match=message):
        _export(tmp_path, _net("typical", "real"), **options)


@pytest.mark.slow
def test_synthesis_report(tmp_path):
    need_tool("yosys")
    net = randnet.random_network(2, plan="mlp", mode="typical", name="rnd")
    out = _export(tmp_path / "syn", net, num_pe=1, lanes=1)
    rep = fpga.synthesize(out)
    gen = rep["generic"]
    # the weight ROMs stay memories: 16 x 12 + 12 x 8 + 8 x 5 words of 8 bits
    assert gen["lut"] > 0 and gen["ff"] > 0 and gen["ram"] == 3
    assert gen["rom_bits"] == 8 * (16 * 12 + 12 * 8 + 8 * 5)
    ice = rep["ice40"]
    assert ice["lut"] > 0 and ice["ram"] >= 1 and ice["fits_up5k"]
    if fpga.tools.find_tool("nextpnr-ice40"):
        assert rep["fmax_mhz"] > 20   # 17.4 MHz before the fire scan and MAC were pipelined


@pytest.mark.slow
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_cli_export_verify_end_to_end(tmp_path, digits_run, capsys, sim):
    """ttfs-export --target fpga --verify, then ttfs-verify; a corrupted ROM exits 1."""
    need_tool(SIM_TOOL[sim])
    need_tool("yosys")
    out = tmp_path / "fpga"
    args = [str(digits_run), "--target", "fpga", "-o", str(out), "--vectors", "6", "--num-pe",
            "4", "--sim", sim, "--option", "lanes=4", "--verify"]
    if sim == "icarus":
        args += ["--option", "synth=0"]       # Yosys runs once, in the Verilator case
    assert export_cli.main(args) == 0
    text = capsys.readouterr().out
    assert f"{sim}: 8 vectors, 0 mismatches" in text and "prediction exact" in text
    assert "fpga: 8 passed, 0 failed -> OK" in text
    report = json.loads((out / "report.json").read_text())
    assert report["sim"]["sim"] == sim and report["sim"]["mismatches"] == 0
    assert report["sim"]["cycles_max"] >= report["sim"]["cycles_mean"] > 0
    if sim == "verilator":
        assert "| yosys generic" in text
        gen = report["synth"]["generic"]
        assert gen["lut"] > 0 and gen["ff"] > 0 and gen["ram"] == 2 and gen["rom_bits"] > 0
        # digits 64-256-10 at 4 PEs: 64 x 64 words of 32 bits > the UP5K's 120 kbit of RAM
        assert "skipped" in report["synth"]["ice40"]
        return
    assert verify_cli.main([str(out)]) == 0
    assert "fpga: 8 passed, 0 failed -> OK" in capsys.readouterr().out
    first = ir.load(out / "model.ttfs").spiking_layers[0].name
    _rewrite_mem(out / "rtl" / f"{first}_bias.mem", lambda i, w: w ^ 0xFFFF if i == 0 else w)
    assert verify_cli.main([str(out)]) == 1
    text = capsys.readouterr().out
    assert f"first divergence at layer '{first}', neuron 0" in text and "-> MISMATCH" in text


def test_cli_user_errors_exit_2(tmp_path, digits_run, capsys):
    out = tmp_path / "bad"
    assert export_cli.main([str(digits_run), "--target", "fpga", "-o", str(out),
                            "--option", "lanes=999"]) == 2
    assert "fpga option lanes: expected an int in 1..64" in capsys.readouterr().err
    assert verify_cli.main([str(tmp_path)]) == 2


@pytest.fixture(scope="session")
def mnist5k_run(tmp_path_factory):
    """The mnist5k MLP (784-256-10), 2 epochs (about 10 s)."""
    train = pytest.importorskip("sdk.train")
    out = tmp_path_factory.mktemp("runs") / "mnist5k_mlp"
    train.train(train.TrainConfig(dataset="mnist5k", arch="mlp", epochs=2), out, quiet=True)
    return out


@pytest.mark.slow
def test_mnist5k_mlp_on_real_images(tmp_path, mnist5k_run, build_cache):
    """784-256-10 on a handful of real test images: 0 mismatches, cycles exact."""
    need_tool("verilator")
    from sdk.data import load_dataset
    from sdk.floatnet import load_float_network
    from sdk.quantize import quantize

    net = quantize(load_float_network(mnist5k_run), name="mnist")
    assert [layer.weight.shape for layer in net.layers if hasattr(layer, "weight")] == \
        [(256, 784), (10, 256)]
    images = load_dataset("mnist5k").test_images[:5].reshape(5, -1).astype(np.uint8)
    vec = vectors.make(net, images)
    out = tmp_path / "mnist"
    fpga.emit(ExportContext(net=net, vectors=vec, out=out, name="mnist",
                            options={"num_pe": 32, "lanes": 16}))
    res = fpga.simulate(out, "verilator", build_dir=build_cache)
    assert res["mismatches"] == 0, res["first_mismatch"]
    assert res["cycles_predicted_ok"], res["cycles_first_wrong"]
