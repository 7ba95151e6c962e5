"""Deterministic zip archives of `.npy` arrays (fixed timestamps, sorted names, atomic write).

Used by `model.ttfs` and `vectors.npz`: the same content always gives the same bytes, and a
failed write never leaves a partial file at the destination.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np


def npy_bytes(array: np.ndarray) -> bytes:
    """The `.npy` serialization of `array` (C order, never pickled)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def write(path: str | Path, members: dict[str, bytes]) -> None:
    """Write `members` (name -> bytes) to a zip at `path`, atomically, in sorted name order."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for name in sorted(members):
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, members[name])
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
