"""A corpus of malformed inputs through the real loaders: one clean error each, bounded cost.

Generated, deterministic mutations of valid `model.ttfs` files (>= 300: truncations, bit flips,
manifest field swaps, forged arrays, hostile zips, huge shapes) and of valid run directories
(>= 100: config field swaps, layer-spec errors, broken JSON, broken or degenerate
checkpoints). Each goes through `ttfs.sdk.ir.load` or `load_float_network` + `quantize` (and, when
it loads, the golden simulator on two images). Passing means: the only exceptions are the module's
ValueError subclass (no traceback), with a one-line message, within TIME_LIMIT seconds and a
peak of MEMORY_LIMIT traced bytes per input. Two of them also go through `ttfs-export`, which
must exit 2 with one `error:` line.
"""

from __future__ import annotations

import copy
import json
import struct
import subprocess
import sys
import time
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from ttfs.sdk import golden, ir, modelfile, npzip, randnet
from ttfs.sdk.floatnet import NetworkError, load_float_network
from ttfs.sdk.quantize import QuantizeError, quantize

TIME_LIMIT = 2.0
MEMORY_LIMIT = 64 * 2**20
MODEL_ERRORS = (ir.TTFSFormatError,)
RUN_ERRORS = (NetworkError, QuantizeError)
#: Replacement values for a field: wrong types, out of range, non-finite, huge, nested.
SWAPS = [None, [], {}, "1", 16.7, -1, 0, True, 1e308, float("nan"), float("inf"),
         [[[[1]]]], {"a": {"b": 1}}, "BIG", 2**40]


def big_int_json(value) -> str:
    """JSON of `value` with "BIG" replaced by a 5,000-digit integer literal."""
    return json.dumps(value, allow_nan=True).replace('"BIG"', "9" * 5000)


# ---------------------------------------------------------------------------- model.ttfs

def base_models(tmp: Path) -> list[tuple[Path, ir.Network]]:
    out = []
    for plan in sorted(randnet.PLANS):
        for coding in ("real", "ttfs"):
            net = randnet.random_network(7, plan=plan, input_coding=coding)
            path = tmp / f"base_{plan}_{coding}.ttfs"
            ir.save(net, path)
            out.append((path, net))
    return out


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def zip_raw(path: Path, entries: list[tuple[str, bytes, int]]) -> None:
    """A zip with exactly these (name, data, compression) entries (duplicates allowed)."""
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
        warnings.simplefilter("ignore")         # "Duplicate name": that is the point
        for name, data, method in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            zf.writestr(info, data)


def manifest_mutations(manifest: dict) -> list[dict]:
    """Field swaps and semantic breakage of a manifest."""
    out = []
    for key in ("T", "name", "weight_bits", "kernel_bits", "format_version", "hash",
                "generator", "accumulators", "reference"):
        for value in SWAPS:
            m = copy.deepcopy(manifest)
            m[key] = value
            out.append(m)
    for key, value in [("shape", [1, 65536, 65536]), ("shape", [1, 2]), ("shape", "x"),
                       ("shape", [1, -4, 4]), ("coding", "rate"), ("coding", 1),
                       ("extra", 1)]:
        m = copy.deepcopy(manifest)
        m["input"][key] = value
        out.append(m)
    for change in [{"stride": 0}, {"stride": "1"}, {"padding": "1"}, {"padding": -1},
                   {"size": 1}, {"kind": "avgpool2d"}, {"name": "TTFS_WEIGHT"},
                   {"name": "Ttfs_x"}, {"name": "INT"}, {"name": "x" * 100}, {"extra": 1},
                   {"name": None}, {"kind": None}]:
        for i in range(len(manifest["layers"])):
            m = copy.deepcopy(manifest)
            m["layers"][i].update(change)
            out.append(m)
    for extra in [{"unknown": 1}, {"Hash": "x"}]:
        out.append({**copy.deepcopy(manifest), **extra})
    m = copy.deepcopy(manifest)
    m["layers"] = m["layers"] * 2
    out.append(m)
    m = copy.deepcopy(manifest)
    m["reference"] = {"q": "NaN-literal"}
    out.append(m)
    return out


def array_mutations(net: ir.Network) -> list[tuple[str, bytes]]:
    layer = net.spiking_layers[0].name
    header = b"{'descr': '<i4', 'fortran_order': False, 'shape': (1099511627776,), }"
    huge = b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + header.ljust(117) + b"\n"
    return [
        (f"{layer}.theta.npy", npzip.npy_bytes(net.spiking_layers[0].theta.astype(np.int64))),
        (f"{layer}.theta.npy", npzip.npy_bytes(net.spiking_layers[0].theta.astype(">i4"))),
        (f"{layer}.theta.npy", npzip.npy_bytes(net.spiking_layers[0].theta.astype(np.float32))),
        (f"{layer}.weight.npy", npzip.npy_bytes(np.asfortranarray(
            net.spiking_layers[0].weight.T).T)),
        (f"{layer}.bias.npy", huge),
        (f"{layer}.bias.npy", npzip.npy_bytes(np.zeros(4, np.int32)) + b"extra"),
        (f"{layer}.bias.npy", b""),
        (f"{layer}.bias.npy", b"\x93NUMPY\x03\x00" + b"\x00" * 20),
        (f"{layer}.bias.npy", npzip.npy_bytes(np.zeros((0,), np.int32))),
        (f"{layer}.bias.npy", npzip.npy_bytes(np.full(len(net.spiking_layers[0].bias),
                                                      2**31 - 1, np.int32))),
        (f"{layer}.weight.npy", npzip.npy_bytes(np.zeros((3,) * 6, np.int32))),
        (f"{layer}.kernel.npy", npzip.npy_bytes(np.arange(net.T, dtype=np.int32))),
        (f"{layer}.theta.npy", npzip.npy_bytes(np.zeros(net.T, np.int32))),
    ]


def make_model_corpus(tmp: Path) -> list[Path]:
    rng = np.random.default_rng(2024)
    corpus = []

    def emit(data: bytes) -> None:
        path = tmp / f"m{len(corpus):04d}.ttfs"
        path.write_bytes(data)
        corpus.append(path)

    def emit_members(entries: dict[str, bytes]) -> None:
        path = tmp / f"m{len(corpus):04d}.ttfs"
        npzip.write(path, entries)
        corpus.append(path)

    for base, net in base_models(tmp):
        raw = base.read_bytes()
        for cut in rng.integers(0, len(raw), 12):                      # truncations
            emit(raw[:int(cut)])
        for _ in range(14):                                             # bit flips
            data = bytearray(raw)
            for pos in rng.integers(0, len(raw), int(rng.integers(1, 4))):
                data[int(pos)] ^= 1 << int(rng.integers(8))
            emit(bytes(data))
        for name, data in array_mutations(net)[:6]:
            emit_members({**members(base), name: data})
    base, net = base_models(tmp)[2]                                      # the cnn, real coding
    manifest = json.loads(members(base)[modelfile.MANIFEST])
    for m in manifest_mutations(manifest):
        emit_members({**members(base), modelfile.MANIFEST: big_int_json(m).encode()})
    for name, data in array_mutations(net):
        emit_members({**members(base), name: data})
    good = members(base)
    text = good[modelfile.MANIFEST]
    for raw_manifest in [b"{", b"[" * 100000 + b"]" * 100000, b"\xff\xfe", b"null", b"[]",
                         text.replace(b'"T": 8', b'"T": NaN'),
                         text.replace(b'"T": 8', b'"T": Infinity'),
                         text.replace(b'"T": 8', b'"T": 8.0'),
                         text.replace(b'"T": 8', b'"T": ' + b"9" * 5000),
                         text.replace(b'"T": 8', b'"T": 1e999'),
                         b'{"format": "ttfs-ir"' + b', "a": 1' * 20000 + b"}"]:
        emit_members({**good, modelfile.MANIFEST: raw_manifest})
    entries = [(name, data, zipfile.ZIP_DEFLATED) for name, data in sorted(good.items())]
    hostile = [
        entries + [entries[0]],                                          # duplicate member
        entries + [("x.npy", b"1", zipfile.ZIP_STORED)],
        [(n, d, zipfile.ZIP_BZIP2) for n, d, _ in entries],               # other compression
        [(n, d, zipfile.ZIP_LZMA) for n, d, _ in entries],
        [e for e in entries if e[0] != modelfile.MANIFEST],
        entries + [("../evil", b"x", zipfile.ZIP_STORED)],
        [(modelfile.MANIFEST, text, zipfile.ZIP_DEFLATED)] * 2,
        entries + [(f"pad{i}.npy", b"", zipfile.ZIP_STORED) for i in range(4100)],
    ]
    for entry_list in hostile:
        path = tmp / f"m{len(corpus):04d}.ttfs"
        zip_raw(path, entry_list)
        corpus.append(path)
    raw = base.read_bytes()
    eocd = raw.rindex(b"PK\x05\x06")
    for offset in (0, 2**31, len(raw) + 10, 12345, 1):                  # central dir offset
        emit(raw[:eocd + 16] + struct.pack("<I", offset) + raw[eocd + 20:])
    for count in (0, 65535):                                            # entry counts
        emit(raw[:eocd + 10] + struct.pack("<H", count) + raw[eocd + 12:])
    # a member whose header claims far more than the limit (a zip bomb's size field)
    local = raw.index(b"PK\x01\x02")
    emit(raw[:local + 24] + struct.pack("<I", 2**32 - 1) + raw[local + 28:])
    # sizes the format allows but the limits refuse: a 2 MiB input, 5 M outputs
    big_in = randnet.random_network(1, plan="mlp")
    ir.save(big_in, tmp / "mlp.ttfs")
    m = members(tmp / "mlp.ttfs")
    manifest = json.loads(m[modelfile.MANIFEST])
    manifest["input"]["shape"] = [2, 1024, 1024]
    emit_members({**m, modelfile.MANIFEST: json.dumps(manifest).encode()})
    out_name = big_in.layers[-1].name
    emit_members({**m, f"{out_name}.weight.npy": npzip.npy_bytes(
        np.zeros((5_000_000, big_in.layers[-1].weight.shape[1]), np.int32)),
        f"{out_name}.bias.npy": npzip.npy_bytes(np.zeros(5_000_000, np.int32))})
    emit(b"")
    emit(b"PK\x05\x06" + b"\x00" * 18)
    (tmp / "adir.ttfs").mkdir()
    corpus.append(tmp / "adir.ttfs")
    corpus.append(tmp / "missing.ttfs")
    return corpus


# ---------------------------------------------------------------------------- run dirs

def base_config(plan: str, coding: str) -> tuple[dict, dict[str, np.ndarray]]:
    return randnet.random_run(5, plan=plan, input_coding=coding)


def write_run(path: Path, config_text: str | bytes | None, arrays: dict | bytes | None) -> Path:
    """A run folder with this config.json text and these arrays (or raw checkpoint bytes);
    None leaves the file out."""
    path.mkdir(parents=True)
    if config_text is not None:
        raw = config_text.encode() if isinstance(config_text, str) else config_text
        (path / "config.json").write_bytes(raw)
    if isinstance(arrays, dict):
        save_file(arrays, str(path / "model.safetensors"))
    elif arrays is not None:
        (path / "model.safetensors").write_bytes(arrays)
    return path


def make_run_corpus(tmp: Path) -> list[Path]:
    rng = np.random.default_rng(7)
    corpus = []

    def emit(config, arrays) -> None:
        text = config if isinstance(config, (str, bytes)) or config is None else \
            big_int_json(config)
        corpus.append(write_run(tmp / f"r{len(corpus):04d}", text, arrays))

    config, arrays = base_config("cnn", "real")
    for key in ("T", "q", "input_coding", "bn_eps", "num_classes", "input_shape", "layers",
                "weight_bits", "kernel_bits", "dataset"):
        for value in SWAPS:
            emit({**config, key: value}, arrays)
    for plan in ("mlp", "cnn"):
        config, arrays = base_config(plan, "ttfs")
        for change in [{"stride": 0}, {"padding": "1"}, {"kernel_size": 1000},
                       {"out_features": 10**9}, {"out_channels": 10**6},
                       {"name": "TTFS_WEIGHT"}, {"name": "Ttfs_x"}, {"name": "Out"},
                       {"name": "Input"}, {"extra": 1}, {"kind": "avgpool"}, {"size": 0}]:
            c = copy.deepcopy(config)
            c["layers"][0].update(change)
            emit(c, arrays)
        c = copy.deepcopy(config)
        c["input_shape"] = [1, 65536, 65536]                             # 400 GiB of pixels
        emit(c, arrays)
        for key, value in [("tau", 1e-300), ("tau", -1.0), ("tau", float("nan")),
                           ("td", 1e5), ("td", float("inf")), ("bn.running_var", -1.0),
                           ("weight", float("nan"))]:
            first = "fc1" if plan == "mlp" else "conv1"
            a = dict(arrays)
            a[f"{first}.{key}"] = np.full_like(arrays[f"{first}.{key}"], value)
            emit(config, a)
        a = dict(arrays)
        a["input.tau"] = np.array([1e-9], np.float32)
        emit(config, a)
        a = {k: v for k, v in arrays.items() if not k.endswith(".bias")}
        emit(config, a)
        a = dict(arrays)
        a["out.weight"] = np.zeros((3, 99), np.float32)
        emit(config, a)
    config, arrays = base_config("mlp", "real")
    text = json.dumps(config)
    for raw in [text[:len(text) // 2], "[" * 100000 + "]" * 100000, "[]", "null", "",
                text.replace('"T": 8', '"T": NaN'), text.replace('"T": 8', '"T": 16.7'),
                text.replace('"T": 8', '"T": ' + "1" * 5000), b"\xff\xfe\x00"]:
        emit(raw, arrays)
    for _ in range(6):
        data = bytearray(text.encode())
        data[int(rng.integers(len(data)))] ^= 0x20
        emit(bytes(data), arrays)
    save_file(arrays, str(tmp / "weights.tmp"))
    weights = (tmp / "weights.tmp").read_bytes()
    for cut in (0, 4, 8, 20, len(weights) // 2, len(weights) - 1):
        emit(text, weights[:cut])
    for pos in (0, 3, 8, 12, 30):
        data = bytearray(weights)
        data[pos] ^= 0xFF
        emit(text, bytes(data))
    emit(text, struct.pack("<Q", 2**62) + b"{}")                          # header size lie
    emit(text, None)
    emit(None, arrays)
    return corpus


# ---------------------------------------------------------------------------- checks

def check(load, path: Path, errors: tuple[type, ...]) -> str:
    """Run `load(path)` under tracemalloc; returns 'ok' or 'refused', asserting the bounds."""
    tracemalloc.reset_peak()
    start = time.perf_counter()
    try:
        load(path)
        outcome = "ok"
    except errors as err:
        message = str(err)
        assert message and "\n" not in message and len(message) < 2000, (path, message)
        outcome = "refused"
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    assert seconds < TIME_LIMIT, f"{path}: {seconds:.2f} s"
    assert peak < MEMORY_LIMIT, f"{path}: peak {peak / 2**20:.0f} MiB"
    return outcome


def load_model(path: Path) -> None:
    net = ir.load(path)
    golden.run(net, randnet.random_images(0, net, 0))


def load_run(path: Path) -> None:
    net = quantize(load_float_network(path))
    golden.run(net, randnet.random_images(0, net, 0))


@pytest.fixture(scope="module")
def traced():
    tracemalloc.start()
    yield
    tracemalloc.stop()


def test_malformed_model_files(tmp_path, traced):
    corpus = make_model_corpus(tmp_path)
    assert len(corpus) >= 300
    outcomes = [check(load_model, path, MODEL_ERRORS) for path in corpus]
    assert outcomes.count("refused") >= 290, outcomes.count("ok")


def test_malformed_run_dirs(tmp_path, traced):
    corpus = make_run_corpus(tmp_path)
    assert len(corpus) >= 100
    outcomes = [check(load_run, path, RUN_ERRORS) for path in corpus]
    assert outcomes.count("refused") >= 100, outcomes.count("ok")


@pytest.mark.parametrize("kind", ["model", "run", "shape"])
def test_export_cli_prints_one_error_line(tmp_path, kind):
    if kind == "model":
        base, _ = base_models(tmp_path)[0]
        source = tmp_path / "truncated.ttfs"
        source.write_bytes(base.read_bytes()[:300])
    elif kind == "shape":       # a valid run whose input is not its dataset's image shape
        config, arrays = base_config("mlp", "real")
        config = {**config, "input_shape": [1, 4, 4]}
        arrays = {**arrays, "fc1.weight": arrays["fc1.weight"][:, :16].copy()}
        source = write_run(tmp_path / "run", json.dumps(config), arrays)
    else:
        config, arrays = base_config("mlp", "real")
        source = write_run(tmp_path / "run", big_int_json({**config, "T": 16.7}), arrays)
    result = subprocess.run([sys.executable, "-m", "ttfs.codegen.export_cli", str(source),
                             "--target", "mcu", "-o", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()
    if kind == "run":
        assert "config.json: 'T': expected an int in 2..4096, got 16.7" in lines[0]
    if kind == "shape":
        assert "'input_shape' [1, 4, 4] does not match dataset 'digits' images" in lines[0]


def _layer(config: dict, **change) -> dict:
    config = copy.deepcopy(config)
    config["layers"][0].update(change)
    return config


@pytest.mark.parametrize("mutate, message", [
    (lambda c, a: ({**c, "T": 16.7}, a), r"'T': expected an int in 2\.\.4096, got 16\.7"),
    (lambda c, a: ({**c, "T": None}, a), r"'T': expected an int in 2\.\.4096, got None"),
    (lambda c, a: ({**c, "T": [16]}, a), r"'T': expected an int in 2\.\.4096, got \[16\]"),
    (lambda c, a: ({**c, "T": "BIG"}, a), r"'T': expected an int .* got an integer of about "
                                          r"5000 digits|cannot read the run config"),
    (lambda c, a: ({**c, "q": float("nan")}, a), r"cannot read the run config \(NaN is not"),
    (lambda c, a: ({**c, "input_shape": {"a": {"b": 1}}}, a), r"'input_shape': expected 3"),
    (lambda c, a: (_layer(c, stride=0), a), r"layer 'conv1' \(conv2d\): 'stride' must be a "
                                            r"positive integer, got 0"),
    (lambda c, a: (_layer(c, padding="1"), a), r"'padding' must be an integer >= 0, got '1'"),
    (lambda c, a: (_layer(c, name="TTFS_WEIGHT"), a), r"'TTFS_WEIGHT' starts with the reserved"),
    (lambda c, a: (_layer(c, name="Ttfs_x"), a), r"'Ttfs_x' starts with the reserved prefix"),
    (lambda c, a: ({**c, "input_shape": [1, 65536, 65536]}, a),
     r"'input_shape': expected 3 positive ints|network too large"),
    (lambda c, a: (c, {**a, "conv1.tau": np.array([1e-30], np.float32)}),
     r"model\.safetensors: layer 'conv1': kernel parameters tau=.*below the minimum"),
    (lambda c, a: (c, {**a, "conv1.td": np.array([1e5], np.float32)}),
     r"layer 'conv1': kernel parameters tau=.*, td=100000\.0 .*beyond \+-700"),
])
def test_named_refusals(tmp_path, mutate, message):
    """The cases of issue 9, each refused naming the file and the field."""
    config, arrays = mutate(*base_config("cnn", "real"))
    run = write_run(tmp_path / "run", big_int_json(config), arrays)
    with pytest.raises(RUN_ERRORS, match=message) as info:
        quantize(load_float_network(run))
    assert str(run) in str(info.value)
