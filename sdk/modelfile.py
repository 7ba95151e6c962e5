"""The `model.ttfs` file format: a zip of `.npy` arrays plus `manifest.json` (DESIGN.md 4).

    manifest.json   {"format": "ttfs-ir", "format_version": 1, "generator", "name", "T",
                     "weight_bits", "kernel_bits", "input": {"shape", "coding"},
                     "layers": [{"kind", "name", <scalar fields>}], "accumulators":
                     {layer: {"bound", "bits"}}, "reference": {float values}, "hash"}
    <layer>.<field>.npy   int32 arrays (`ttfs.sdk.ir.Network.arrays`); input.times/input.kernel
                          under `ttfs` coding

Written with fixed timestamps in sorted order (byte-reproducible, `ttfs.sdk.npzip`). Read with numpy
alone (`allow_pickle=False`), hostile input assumed: the file, the uncompressed members and the
manifest have size limits; zip entries must be unique, stored or deflated, unencrypted; the
manifest may hold only the keys above (no NaN/Infinity, no unknown keys); every `.npy` header
must match its data size before numpy allocates; the content hash and the accumulator bounds
must match the arrays; the network must pass `ttfs.sdk.ir.Network` and the size limits of
`ttfs.sdk.limits`. Every violation raises `TTFSFormatError` naming the file and the field.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ttfs.sdk import limits, npzip
from ttfs.sdk.ir import (ARRAY_FIELDS, FORMAT_NAME, FORMAT_VERSION, LAYER_KINDS, SCALAR_FIELDS,
                    Network, TTFSFormatError, check_identifier)

MANIFEST = "manifest.json"
MAX_FILE_BYTES = 256 * 2**20
MAX_MANIFEST_BYTES = 2**20
MAX_ENTRIES = 4096
MANIFEST_KEYS = frozenset({"format", "format_version", "generator", "name", "T", "weight_bits",
                           "kernel_bits", "input", "layers", "accumulators", "reference",
                           "hash"})
#: Depth of the `reference` object: {"layers": {name: {field: number}}}.
_REFERENCE_DEPTH = 3


def save(net: Network, path: str | Path) -> str:
    """Write `net` to `path` as `model.ttfs` (deterministic bytes, atomic); returns its hash."""
    manifest = net.manifest()
    manifest["hash"] = net.content_hash
    members = {f"{key}.npy": npzip.npy_bytes(array) for key, array in net.arrays().items()}
    members[MANIFEST] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    npzip.write(path, members)
    return net.content_hash


def load(path: str | Path) -> Network:
    """Read and validate a `model.ttfs` file; every problem raises TTFSFormatError naming it."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise TTFSFormatError(f"{path}: cannot read ({exc.strerror})") from None
    if not path.is_file():
        raise TTFSFormatError(f"{path}: not a file")
    if size > MAX_FILE_BYTES:
        raise TTFSFormatError(f"{path}: {size} bytes is larger than the limit {MAX_FILE_BYTES}")
    try:
        _check_directory(path, size)
        with zipfile.ZipFile(path) as zf:
            return _load_zip(zf)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, OSError,
            NotImplementedError, RuntimeError, ValueError) as exc:
        if isinstance(exc, TTFSFormatError):
            raise TTFSFormatError(f"{path}: {exc}") from None
        raise TTFSFormatError(f"{path}: not a valid model.ttfs zip "
                              f"({limits.clip(str(exc))})") from None


def _check_directory(path: Path, size: int) -> None:
    """Refuse a zip whose end record declares more entries or a larger central directory than
    a model.ttfs can have, or zip64, before zipfile parses (and allocates) the directory."""
    with path.open("rb") as fp:
        fp.seek(max(0, size - 65557))
        tail = fp.read()
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or len(tail) - end < 22:
        raise TTFSFormatError("not a valid model.ttfs zip (no end of central directory)")
    entries, cd_size = struct.unpack("<HI", tail[end + 10:end + 16])
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF or b"PK\x06\x07" in tail[max(0, end - 20):end]:
        raise TTFSFormatError("zip64 archives are not allowed")
    if entries > MAX_ENTRIES or cd_size > MAX_ENTRIES * 1024:
        raise TTFSFormatError(f"the zip declares {entries} entries in {cd_size} bytes, more "
                              f"than the limit {MAX_ENTRIES}")


def _load_zip(zf: zipfile.ZipFile) -> Network:
    entries = zf.infolist()
    if len(entries) > MAX_ENTRIES:
        raise TTFSFormatError(f"{len(entries)} entries, more than the limit {MAX_ENTRIES}")
    names = [e.filename for e in entries]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise TTFSFormatError(f"duplicate zip members {dup[:5]}")
    for e in entries:
        if e.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise TTFSFormatError(f"{e.filename}: compression method {e.compress_type} is not "
                                  "allowed (stored or deflated)")
        if e.flag_bits & 0x1:
            raise TTFSFormatError(f"{e.filename}: encrypted members are not allowed")
    if sum(e.file_size for e in entries) > MAX_FILE_BYTES:
        raise TTFSFormatError(f"uncompressed size exceeds the limit {MAX_FILE_BYTES} bytes")
    if MANIFEST not in names:
        raise TTFSFormatError(f"{MANIFEST} is missing")
    if zf.getinfo(MANIFEST).file_size > MAX_MANIFEST_BYTES:
        raise TTFSFormatError(f"{MANIFEST}: larger than the limit {MAX_MANIFEST_BYTES} bytes")
    manifest = _read_manifest(zf.read(MANIFEST))
    expected = _expected_arrays(manifest)
    found = set(names) - {MANIFEST}
    if found != {f"{key}.npy" for key in expected}:
        missing = sorted({f"{key}.npy" for key in expected} - found)
        extra = sorted(found - {f"{key}.npy" for key in expected})
        raise TTFSFormatError(f"arrays do not match the manifest: missing {missing[:5]}, "
                              f"extra {[limits.clip(x, 60) for x in extra[:5]]}")
    _check_declared_sizes(zf, expected)
    arrays = {key: _read_array(zf.read(f"{key}.npy"), key) for key in expected}
    net = build(manifest, arrays)
    if manifest.get("hash") != net.content_hash:
        raise TTFSFormatError(f"hash: the content hash {net.content_hash} does not match the "
                              f"manifest's {limits.show(manifest.get('hash'))} (file modified "
                              "or corrupt)")
    if manifest.get("accumulators") != net.manifest()["accumulators"]:
        raise TTFSFormatError(f"{MANIFEST}: 'accumulators' does not match the arrays "
                              "(file modified or corrupt)")
    return net


def _read_manifest(raw: bytes) -> dict:
    try:
        manifest = limits.strict_json(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise TTFSFormatError(f"{MANIFEST}: not valid JSON "
                              f"({limits.clip(str(exc))})") from None
    if not isinstance(manifest, dict):
        raise TTFSFormatError(f"{MANIFEST}: expected a JSON object")
    if manifest.get("format") != FORMAT_NAME:
        raise TTFSFormatError(f"{MANIFEST}: 'format' must be {FORMAT_NAME!r}, "
                              f"got {limits.show(manifest.get('format'))}")
    if manifest.get("format_version") != FORMAT_VERSION or isinstance(
            manifest.get("format_version"), bool):
        raise TTFSFormatError(f"{MANIFEST}: format_version "
                              f"{limits.show(manifest.get('format_version'))} is not supported "
                              f"(this reader knows {FORMAT_VERSION})")
    unknown = set(manifest) - MANIFEST_KEYS
    if unknown:
        raise TTFSFormatError(f"{MANIFEST}: unknown keys "
                              f"{[limits.clip(str(k), 60) for k in sorted(unknown)[:5]]}")
    for key in ("generator", "hash"):
        _field(manifest, key, str, "")
    inp = _field(manifest, "input", dict, "")
    if set(inp) != {"shape", "coding"}:
        raise TTFSFormatError(f"{MANIFEST}: 'input' must have exactly the keys coding, shape; "
                              f"got {[limits.clip(str(k), 60) for k in sorted(inp)[:5]]}")
    if not isinstance(manifest.get("reference", {}), dict):
        raise TTFSFormatError(f"{MANIFEST}: 'reference' must be an object")
    _check_reference(manifest.get("reference", {}), "reference", _REFERENCE_DEPTH)
    return manifest


def _check_reference(value: object, where: str, depth: int) -> None:
    """`reference` holds only finite numbers in objects at most `depth` deep (no lists)."""
    if isinstance(value, dict) and depth > 0:
        for key, item in value.items():
            _check_reference(item, f"{where}.{limits.show(key)}", depth - 1)
    elif limits.float_problem(value, -math.inf, math.inf):
        raise TTFSFormatError(f"{MANIFEST}: '{where}' must be a finite number or an object of "
                              f"them, got {limits.show(value)}")


def _field(mapping: dict, key: str, kind: type | tuple, where: str):
    value = mapping.get(key) if isinstance(mapping, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TTFSFormatError(f"{MANIFEST}: {where}{key!r} missing or not of type "
                              f"{getattr(kind, '__name__', kind)}")
    return value


def _manifest_layers(manifest: dict) -> list[dict]:
    layers = _field(manifest, "layers", list, "")
    if len(layers) > limits.MAX_LAYERS:
        raise TTFSFormatError(f"{MANIFEST}: {len(layers)} layers, more than the limit "
                              f"{limits.MAX_LAYERS}")
    for i, params in enumerate(layers):
        kind = _field(params, "kind", str, f"layers[{i}].")
        if kind not in LAYER_KINDS:
            raise TTFSFormatError(f"{MANIFEST}: layers[{i}].kind {limits.show(kind)} is not "
                                  f"one of {sorted(LAYER_KINDS)}")
        check_identifier(_field(params, "name", str, f"layers[{i}]."), f"layers[{i}].name")
        extra = set(params) - {"kind", "name", *SCALAR_FIELDS[kind]}
        if extra:
            raise TTFSFormatError(f"{MANIFEST}: layers[{i}] has unknown keys "
                                  f"{[limits.clip(str(k), 60) for k in sorted(extra)[:5]]}")
    return layers


def _expected_arrays(manifest: dict) -> list[str]:
    coding = _field(_field(manifest, "input", dict, ""), "coding", str, "input.")
    keys = ["input.times", "input.kernel"] if coding == "ttfs" else []
    for params in _manifest_layers(manifest):
        keys += [f"{params['name']}.{fld}" for fld in ARRAY_FIELDS[params["kind"]]]
    if len(set(keys)) != len(keys):
        raise TTFSFormatError(f"{MANIFEST}: layer names must be unique")
    return keys


def _check_declared_sizes(zf: zipfile.ZipFile, keys: list[str]) -> None:
    """Refuse arrays whose `.npy` headers declare more than the limits allow, before any
    array data is read: all weights together at most `ttfs.sdk.limits.MAX_WEIGHTS` elements,
    every other array at most `ttfs.sdk.limits.MAX_NEURONS`."""
    weights = 0
    for key in keys:
        with zf.open(f"{key}.npy") as member:
            head = member.read(12)
            length = (struct.unpack("<H", head[8:10])[0] + 10 if head[6:7] == b"\x01"
                      else struct.unpack("<I", head[8:12])[0] + 12 if len(head) == 12 else 0)
            if length > 12 + 10**5:
                raise TTFSFormatError(f"{key}.npy: .npy header of {length} bytes is too long")
            shape = _read_array(head + member.read(max(length - 12, 0)), key, header_only=True)
        count = math.prod(shape)
        if key.endswith(".weight"):
            weights += count
        elif count > limits.MAX_NEURONS:
            raise TTFSFormatError(f"{key}.npy: {count} elements, more than the limit "
                                  f"{limits.MAX_NEURONS}")
        if weights > limits.MAX_WEIGHTS:
            raise TTFSFormatError(f"{key}.npy: the weights exceed the limit of "
                                  f"{limits.MAX_WEIGHTS} in all")


def _read_array(raw: bytes, key: str, *, header_only: bool = False):
    """Parse one `.npy` member (or only its header's shape); the header's shape must match the
    data size before numpy allocates anything (a forged shape would otherwise ask for
    terabytes)."""
    fp = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(fp)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"unsupported .npy version {version}")
        shape, _, dtype = read_header(fp)
        if dtype.hasobject:
            raise ValueError(f"object arrays are not allowed (dtype {dtype})")
        if header_only:
            if any(d < 0 for d in shape):
                raise ValueError(f"negative dimension in {limits.show(shape)}")
            return shape
        if any(d < 0 for d in shape) or math.prod(shape) * dtype.itemsize != len(raw) - fp.tell():
            raise ValueError(f"header shape {limits.show(shape)} of {dtype} does not match "
                             f"{len(raw) - fp.tell()} data bytes")
        fp.seek(0)
        return np.load(fp, allow_pickle=False)
    except (ValueError, OSError, EOFError, TypeError, SyntaxError) as exc:
        raise TTFSFormatError(f"{key}.npy: not a valid .npy array "
                              f"({limits.clip(str(exc))})") from None


def build(manifest: dict, arrays: dict[str, np.ndarray]) -> Network:
    """The Network of a checked manifest (`_read_manifest`) and its arrays."""
    layers = []
    for i, params in enumerate(manifest["layers"]):
        cls = LAYER_KINDS[params["kind"]]
        kwargs = {fld: _field(params, fld, int, f"layers[{i}].")
                  for fld in SCALAR_FIELDS[params["kind"]]}
        kwargs.update({fld: arrays[f"{params['name']}.{fld}"]
                       for fld in ARRAY_FIELDS[params["kind"]]})
        layers.append(cls(name=params["name"], **kwargs))
    inp = manifest["input"]
    shape = _field(inp, "shape", list, "input.")
    return Network(
        name=_field(manifest, "name", str, ""),
        T=_field(manifest, "T", int, ""),
        weight_bits=_field(manifest, "weight_bits", int, ""),
        kernel_bits=_field(manifest, "kernel_bits", int, ""),
        input_shape=tuple(shape),
        input_coding=inp["coding"],
        layers=tuple(layers),
        input_times=arrays.get("input.times"),
        input_kernel=arrays.get("input.kernel"),
        reference=manifest.get("reference", {}),
    )
