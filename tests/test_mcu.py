"""MCU target: generated C firmware against the golden simulator, bit for bit.

Seeded random networks (ttfs.sdk.randnet: every plan x mode x input coding, weight widths 2..16)
go through host gcc with strict warnings and under ASan/UBSan; a few run the whole chain
(`verify`: host builds, the example firmware under QEMU on Cortex-M3/M0/M4/M7, sizes). A
corrupted weight must be caught and the report must name its layer. Trained digits and
mnist5k models run when the trainer is installed.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ttfs.codegen import mcu_check, mcu_view, tools
from ttfs.codegen.targets import ExportContext, ExportError, mcu
from ttfs.sdk import ir, randnet, vectors
from ttfs.sdk.ir import Dense, Flatten, Network, Output
from tests.conftest import need_tool

ROOT = Path(__file__).resolve().parent.parent

# weight_bits, kernel_bits, T: 8-bit default, 16-bit weights, 2-bit weights, 16-bit kernels,
# T > 255 (uint16_t spike times)...
BITS = [(8, 8, 8), (16, 8, 32), (2, 3, 5), (12, 2, 300), (8, 16, 16), (4, 8, 12), (3, 8, 8),
        (5, 8, 16)]
CASES = [(plan, mode, coding, *BITS[i % len(BITS)]) for i, (plan, mode, coding) in enumerate(
    itertools.product(randnet.PLANS, randnet.MODES, ("real", "ttfs")))]


def export(net: Network, out: Path, *, seed: int = 0, n: int = 24, name: str | None = None,
           **options) -> vectors.Vectors:
    """What `ttfs-export` does with a model.ttfs: model.ttfs, vectors.npz, export.json, emit."""
    name = name or net.name
    golden = vectors.make(net, randnet.random_images(seed, net, n))
    out.mkdir(parents=True, exist_ok=True)
    ir.save(net, out / "model.ttfs")
    vectors.save(golden, out / "vectors.npz")
    (out / "export.json").write_text(json.dumps({"target": "mcu", "name": name,
                                                 "options": options}))
    mcu.emit(ExportContext(net=net, vectors=golden, out=out, name=name, options=options))
    return golden


def case_id(case) -> str:
    return "-".join(map(str, case))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_random_networks_on_host(tmp_path, case):
    """strict gcc and ASan/UBSan: 0 mismatches in times, scores, classes, counts, SOPs."""
    need_tool("gcc")
    plan, mode, coding, wb, kb, T = case
    net = randnet.random_network(len(CASES) + CASES.index(case), plan=plan, mode=mode,
                                 input_coding=coding, weight_bits=wb, kernel_bits=kb, T=T)
    golden = export(net, tmp_path / "out", seed=CASES.index(case))
    for flavour in mcu_check.HOST_BUILDS:
        result = mcu_check.check_host(net, golden, tmp_path / "out", net.name, tmp_path, flavour)
        assert (result.passed, result.failed, result.first) == (len(golden), 0, None), flavour


# plan, mode, coding, weight_bits, board: every board, 2/4-bit weights on the M0 and RISC-V
CHAIN = [("cnn", "typical", "ttfs", 8, "mps2-an385"), ("mlp", "saturate", "real", 16, "microbit"),
         ("strided", "extreme", "ttfs", 2, "microbit"), ("cnn", "typical", "real", 4, "microbit"),
         ("mlp", "typical", "ttfs", 5, "mps2-an386"), ("cnn", "silent", "real", 8, "mps2-an500"),
         ("cnn", "typical", "real", 4, "sifive_e"), ("strided", "extreme", "ttfs", 2, "sifive_e"),
         ("mlp", "typical", "real", 3, "sifive_e-rv32ec")]


def chain_tools(board: str) -> None:
    for name in mcu_check.board_tools(mcu_view.BOARDS[board]):
        need_tool(name)


@pytest.mark.parametrize("case", CHAIN, ids=case_id)
def test_whole_chain_on_qemu(tmp_path, case):
    """verify(): host builds, the example firmware under QEMU, sizes, stack -- 0 mismatches;
    nothing is written into the export."""
    plan, mode, coding, wb, board = case
    chain_tools(board)
    net = randnet.random_network(100 + CHAIN.index(case), plan=plan, mode=mode,
                                 input_coding=coding, weight_bits=wb)
    golden = export(net, tmp_path / "out", board=board, n=12)
    before = sorted((tmp_path / "out").rglob("*"))
    report = mcu.verify(tmp_path / "out", progress=False, build_dir=tmp_path / "build")
    assert report.ok, "\n".join(report.lines) + f"\n{report.first_mismatch}"
    assert report.failed == 0 and report.first_mismatch is None
    assert sorted((tmp_path / "out").rglob("*")) == before
    # every vector on the host twice, and on the board
    assert report.passed == 3 * len(golden) == 2 * len(golden) + report.data["qemu_vectors"]
    assert [(c["name"], c["status"]) for c in report.cases] == [
        ("host gcc", "pass"), ("host gcc asan+ubsan", "pass"), (f"qemu {board}", "pass")]
    assert report.data["board"] == board
    assert report.data["cpu"] == mcu_view.BOARDS[board].cpu
    assert 0 < report.data["model_flash"] < report.data["firmware_flash"]
    assert 0 < report.data["stack_used"] < mcu_view.BOARDS[board].stack
    # the call-graph bound of the model: below the whole firmware's high-water mark (which adds
    # main.c's frames and a painting margin), above it minus those frames
    assert report.data["stack_used"] - 256 <= report.data["stack_worst"] < \
        report.data["stack_used"]
    assert mcu_view.BOARDS[board].qemu in report.tools and "gcc" in report.tools
    assert set(report.timings) >= {"host gcc", f"qemu {board}"}


def test_verify_on_a_board_with_less_flash(tmp_path):
    """An export for mps2-an385 (100 vectors in its example) verifies on the 16 KiB RV32EC
    board: verify compiles only as many vectors as that flash holds."""
    chain_tools("sifive_e-rv32ec")
    net = randnet.random_network(11, plan="cnn", weight_bits=4)
    golden = export(net, tmp_path / "out", n=100, board="mps2-an385")
    fits = mcu_view.build(net, golden, net.name, board="sifive_e-rv32ec")["vectors"]["count"]
    assert 0 < fits < len(golden)
    report = mcu.verify(tmp_path / "out", progress=False, build_dir=tmp_path / "b",
                        board="sifive_e-rv32ec")
    assert report.ok, report.first_mismatch
    assert report.data["qemu_vectors"] == fits


def test_verify_options(tmp_path):
    """verify: --board none checks the host only, vectors=N the first N, sim is refused,
    vectors < 1 and unknown boards are ExportErrors, the build folder must lie outside OUT."""
    need_tool("gcc")
    net = randnet.random_network(7, plan="mlp", weight_bits=4)
    export(net, tmp_path / "out", n=10)
    report = mcu.verify(tmp_path / "out", progress=False, build_dir=tmp_path / "b",
                        board="none", vectors=5)
    assert report.ok and report.passed == 2 * 5
    assert [c["name"] for c in report.cases] == ["host gcc", "host gcc asan+ubsan"]
    for kwargs, message in (({"sim": "icarus"}, "--sim"), ({"vectors": 0}, "--vectors"),
                            ({"board": "stm32"}, "--board: 'stm32'"),
                            ({"build_dir": tmp_path / "out" / "b"}, "outside the export")):
        with pytest.raises(ExportError, match=message):
            mcu.verify(tmp_path / "out", progress=False, **{"build_dir": tmp_path / "b",
                                                            **kwargs})


@pytest.mark.parametrize("board", ["microbit", "sifive_e"])
def test_corrupted_weight_is_caught_and_named(tmp_path, board):
    """One changed weight word in the generated C: the host and the board both report
    mismatches, and the report names the layer whose spike times diverge first."""
    chain_tools(board)
    net = randnet.random_network(5, plan="cnn", mode="typical", weight_bits=4)
    export(net, tmp_path / "out", n=40, board=board)
    model_c = tmp_path / "out" / f"{net.name}_model.c"
    layer = net.layers[2]                                     # conv2, after conv0 and pool1
    text = model_c.read_text()
    start = text.index(f"{net.name}_{layer.name}_weight[")
    head, body = text[:start], text[start:]
    first = re.search(r"= \{\s*(\d+)U", body)
    value = int(first.group(1)) ^ 0x77777777       # 3 bits of each 4-bit weight of the word
    body = body[:first.start(1)] + str(value) + body[first.end(1):]
    model_c.write_text(head + body)
    report = mcu.verify(tmp_path / "out", progress=False, build_dir=tmp_path / "build")
    assert not report.ok and report.failed > 0
    assert f"layer '{layer.name}'" in report.first_mismatch
    assert "host gcc" in report.first_mismatch
    assert report.first_divergence["layer"] == layer.name
    qemu = report.cases[-1]
    assert (qemu["name"], qemu["status"]) == (f"qemu {board}", "fail") and qemu["failed"] > 0
    assert qemu["message"].startswith("mismatch: sample")


def test_output_files_and_reproducible_bytes(tmp_path):
    net = randnet.random_network(2, plan="cnn", mode="typical", input_coding="ttfs",
                                 name="kws_net")
    golden = vectors.make(net, randnet.random_images(2, net, 5))
    first = mcu.render_files(net, golden, "kws_net")
    assert first == mcu.render_files(net, golden, "kws_net")
    assert {"kws_net_model.h", "kws_net_model.c", "kws_net_vectors.h", "ttfs.h", "README.md",
            "example/Makefile", "example/main.c", "example/board.c", "example/board_arm.c",
            "example/board_riscv.c", "example/boards/sifive_e.ld", "ttfs_stats.h",
            "example/boards/sections.ld", "host/harness.c"} <= set(first)
    model_c = first["kws_net_model.c"].decode()
    assert f"from {net.content_hash} -- do not edit" in model_c
    assert not re.search(r"\b20\d\d-\d\d-\d\d", model_c)            # no dates
    # conv0 3x2x3x3 [c_out][c_in][k][k]: 3 * 3 * 2 = 18 rows of 3 8-bit weights, one word each
    assert "static const uint32_t kws_net_conv0_weight[18U]" in model_c
    assert "#define TTFS_WITH_CONV2D 1" in model_c and "#define TTFS_WITH_TTFS_INPUT 1" in model_c
    assert first["ttfs.h"] == (ROOT / "firmware/runtime/ttfs.h").read_bytes()
    assert "int kws_net_infer(const uint8_t input[KWS_NET_N_IN]" in \
        first["kws_net_model.h"].decode()
    readme = first["README.md"].decode()
    assert "kws_net_model.c" in readme and "CMake" in readme
    # fc0 [12][16]: 16 rows of fan-out 12: 6 words at 16 bits (2 per word), 2 at 4 bits (8 per
    # word), 1 at 2 bits (16 per word); an MLP compiles no conv2d, max pool or input encoder
    for bits, words in ((16, 96), (4, 32), (2, 16)):
        mlp = randnet.random_network(2, plan="mlp", weight_bits=bits)
        model_c = mcu.render_files(mlp, vectors.make(mlp, randnet.random_images(0, mlp, 1)),
                                   "rnd")["rnd_model.c"].decode()
        assert f"static const uint32_t rnd_fc0_weight[{words}U]" in model_c
        assert f"#define TTFS_WEIGHT_BITS {bits}U" in model_c
        assert "#define TTFS_WITH_CONV2D 0" in model_c
        assert "#define TTFS_WITH_MAXPOOL2D 0" in model_c


def test_model_header_alone_in_a_user_file(tmp_path):
    """A user file that includes only <name>_model.h compiles as C99 and C++ and does not see
    the runtime (ttfs.h stays inside <name>_model.c); the header states what it promises."""
    gcc, gxx = need_tool("gcc"), need_tool("g++")
    net = randnet.random_network(3, plan="mlp", weight_bits=4)
    export(net, tmp_path / "out", n=2)
    header = (tmp_path / "out" / "rnd_model.h").read_text()
    for promise in ("Input: RND_N_IN bytes", "Buffers: the caller owns", "static RAM",
                    "Stack: at most", "memcpy/memset", "Reentrancy: not reentrant",
                    "input_spikes", "sops", "#define RND_STACK_BYTES"):
        assert promise in header, promise
    user = tmp_path / "user.c"
    user.write_text('#include "rnd_model.h"\n#ifdef TTFS_H\n#error "runtime leaked"\n#endif\n'
                    "int classify(const uint8_t *image);\n"
                    "int classify(const uint8_t *image) {\n"
                    "    int32_t scores[RND_N_OUT];\n    struct ttfs_stats stats;\n"
                    "    return rnd_infer(image, scores, &stats) + (int)stats.sops;\n}\n")
    for cmd in ([gcc, *mcu_check.STRICT], [gxx, "-x", "c++", "-std=c++11", "-Wall", "-Werror"]):
        subprocess.run([*cmd, "-fsyntax-only", "-I", str(tmp_path / "out"), str(user)],
                       check=True)


def test_make_in_the_output_folder_builds_for_each_board(tmp_path):
    """`make -C OUT/example BOARD=...` (the README's command) builds for every board."""
    need_tool("arm-none-eabi-gcc")
    need_tool("riscv64-unknown-elf-gcc")
    make = need_tool("make")
    net = randnet.random_network(4, plan="strided")
    export(net, tmp_path)
    for board in mcu_view.BOARDS:
        subprocess.run([make, "-s", "-C", str(tmp_path / "example"), f"BOARD={board}"],
                       check=True)
        assert (tmp_path / "example" / "build" / board / "firmware.elf").is_file()
    proc = subprocess.run([make, "-C", str(tmp_path / "example"), "BOARD=stm32"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "BOARD=stm32 is not supported" in proc.stderr


def test_too_large_for_a_board_fails_to_link_clearly(tmp_path):
    """A model for mps2 built for the micro:bit: the linker names the overflowing region."""
    need_tool("arm-none-eabi-gcc")
    make = need_tool("make")
    net = _dense_net(n_in=64, n_hidden=3000)          # 192 KB weights + 24 KiB of events
    export(net, tmp_path, n=2)
    assert mcu_check.default_board(tmp_path) == "mps2-an385"
    proc = subprocess.run([make, "-s", "-C", str(tmp_path / "example"), "BOARD=microbit"],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "region `RAM' overflowed" in proc.stderr


def _dense_net(*, n_in: int, n_hidden: int, name: str = "big") -> Network:
    rng = np.random.default_rng(0)
    T = 4
    hidden = Dense("fc", rng.integers(-3, 4, (n_hidden, n_in)).astype(np.int32),
                   np.zeros(n_hidden, np.int32), np.array([900, 600, 400, 200], np.int32),
                   np.array([255, 128, 64, 32], np.int32))
    out = Output("out", rng.integers(-3, 4, (2, n_hidden)).astype(np.int32),
                 np.zeros(2, np.int32))
    return Network(name=name, T=T, weight_bits=8, kernel_bits=8, input_shape=(1, n_in, 1),
                   input_coding="real", layers=(Flatten("flat"), hidden, out))


@pytest.mark.parametrize("bad", ["9lives", "my-model", "int", "ttfs_model", "a b", ""])
def test_bad_name_is_refused_before_writing(tmp_path, bad):
    net = randnet.random_network(0)
    golden = vectors.make(net, randnet.random_images(0, net, 1))
    with pytest.raises(ExportError, match="--name"):
        mcu.emit(ExportContext(net=net, vectors=golden, out=tmp_path, name=bad))
    assert list(tmp_path.iterdir()) == []


def test_model_too_large_for_every_board_is_refused(tmp_path):
    net = _dense_net(n_in=1024, n_hidden=5000)         # 5 MB of weights
    golden = vectors.make(net, np.zeros((1, 1024), np.uint8))
    with pytest.raises(ExportError, match=r"too large for the MCU target: microbit has 256 KiB "
                                          r"flash .*mps2-an385 has 4096 KiB flash"):
        mcu.emit(ExportContext(net=net, vectors=golden, out=tmp_path, name="big"))
    assert list(tmp_path.iterdir()) == []


def test_board_option(tmp_path):
    net = randnet.random_network(0)
    golden = vectors.make(net, randnet.random_images(0, net, 1))
    with pytest.raises(ExportError, match="board 'stm32' is not supported"):
        mcu.emit(ExportContext(net=net, vectors=golden, out=tmp_path, name="m",
                               options={"board": "stm32"}))
    assert list(tmp_path.iterdir()) == []
    big = _dense_net(n_in=64, n_hidden=3000)
    with pytest.raises(ExportError, match="too large for the MCU target: microbit"):
        mcu.emit(ExportContext(net=big, vectors=vectors.make(big, np.zeros((1, 64), np.uint8)),
                               out=tmp_path, name="m", options={"board": "microbit"}))
    files = mcu.render_files(net, golden, "m", board="mps2-an500")
    assert b"BOARD ?= mps2-an500" in files["example/Makefile"]
    assert b"BOARD ?= microbit" in mcu.render_files(net, golden, "m")["example/Makefile"]


def test_existing_files_are_not_overwritten(tmp_path):
    net = randnet.random_network(0)
    golden = vectors.make(net, randnet.random_images(0, net, 1))
    (tmp_path / "rnd_model.c").write_text("mine")
    with pytest.raises(ExportError, match="would overwrite rnd_model.c"):
        mcu.emit(ExportContext(net=net, vectors=golden, out=tmp_path, name="rnd"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rnd_model.c"]
    assert (tmp_path / "rnd_model.c").read_text() == "mine"


def test_missing_tool_is_named_with_its_package(tmp_path, monkeypatch):
    net = randnet.random_network(0)
    export(net, tmp_path / "out", n=1)
    real = tools.find_tool
    monkeypatch.setattr(tools, "find_tool",
                        lambda name: None if name.startswith("qemu-system") else real(name))
    with pytest.raises(tools.ToolMissing, match="'qemu-system-arm' not found.*qemu-system-arm"):
        mcu.verify(tmp_path / "out", progress=False, build_dir=tmp_path / "b")
    with pytest.raises(tools.ToolMissing, match="'qemu-system-riscv32' not found.*"
                                                "qemu-system-misc"):
        mcu.verify(tmp_path / "out", progress=False, build_dir=tmp_path / "b",
                   board="sifive_e")


def test_verify_refuses_a_folder_that_is_not_an_mcu_export(tmp_path):
    with pytest.raises(ExportError, match="model.ttfs"):
        mcu.verify(tmp_path, progress=False, build_dir=tmp_path.parent / "b")
    net = randnet.random_network(0)
    ir.save(net, tmp_path / "model.ttfs")
    with pytest.raises(ExportError, match="no rnd_model.c"):
        mcu.verify(tmp_path, progress=False, build_dir=tmp_path.parent / "b")


def test_board_table_matches_the_linker_scripts():
    """mcu_view.BOARDS (used for the board choice) says what boards/*.ld say."""
    for board in mcu_view.BOARDS.values():
        script = (ROOT / "firmware/example/boards" / board.ldscript).read_text()
        flash, ram = (int(m) * {"K": 1024, "M": 2**20}[u] for m, u in
                      re.findall(r"LENGTH = (\d+)([KM])", script))
        stack = re.search(r"__stack_size = (\d+)K;", script).group(1)
        assert (flash, ram, int(stack) * 1024) == (board.flash, board.ram, board.stack)


def test_scratch_plan():
    """1x7x7 -> conv 2ch 3x3 stride 2 padding 1 (2x4x4) -> dense 5 -> output 3: the conv keeps
    ceil(3 / 2) = 2 output rows of 4 x 2 accumulators and 4 operand sums; spike
    times conv (32) and dense (5) in uint8_t, or uint16_t when T > 255; no event lists."""
    net = randnet.random_network(0, plan="strided")
    plan = mcu_view.scratch_plan(net)
    assert (plan["acc_len"], plan["times_len"]) == (2 * 4 * (2 + 1), (32, 5))
    assert plan["time_type"] == "uint8_t"
    assert plan["bytes"] == 4 * 24 + (32 + 5)
    wide = mcu_view.scratch_plan(randnet.random_network(0, plan="strided", T=300))
    assert (wide["time_type"], wide["bytes"]) == ("uint16_t", plan["bytes"] + 32 + 5)


def test_checksums_match_the_c_definition():
    """The board checks spike times through sum_i t_i * (2654435761 * (i + 1)) mod 2^32."""
    times = np.array([[3, 0, 7], [8, 8, 8]], dtype=np.int32)
    expected = [sum(int(t) * (2654435761 * (i + 1) % 2**32) for i, t in enumerate(row)) % 2**32
                for row in times]
    assert mcu_view.checksums([times])[:, 0].tolist() == expected
    changed = times.copy()
    changed[0, 2] = 6
    assert mcu_view.checksums([changed])[0, 0] != expected[0]


def test_cli_export_and_verify(tmp_path, capsys):
    """`ttfs-export model.ttfs --target mcu --verify` then `ttfs-verify OUT`."""
    for name in ("gcc", "arm-none-eabi-gcc", "qemu-system-arm", "make"):
        need_tool(name)
    from ttfs.codegen import export_cli, verify_cli
    net = randnet.random_network(9, plan="mlp", input_coding="ttfs", name="kws")
    ir.save(net, tmp_path / "kws.ttfs")
    out = tmp_path / "out"
    assert export_cli.main([str(tmp_path / "kws.ttfs"), "--target", "mcu", "-o", str(out),
                            "--vectors", "10", "--board", "mps2-an385", "--verify"]) == 0
    n = len(vectors.load(out / "vectors.npz"))      # 10 test images + the corner images
    assert n >= 10 and f"mcu: {3 * n} passed, 0 failed -> OK" in capsys.readouterr().out
    assert verify_cli.main([str(out)]) == 0
    assert export_cli.main([str(tmp_path / "kws.ttfs"), "--target", "mcu", "-o", str(out),
                            "--name", "9bad"]) == 2
    assert "--name" in capsys.readouterr().err
