"""Output folders that are never lost: safe targets, atomic replacement, one writer at a time.

    with outdir.replacing(out, force=args.force, sources=[source], what="-o") as tmp:
        ...write every file into tmp...
    # here OUT is the new folder; on an exception (or a kill) OUT is still the old one

Rules (`check_target`): OUT may not be empty (`-o ""`), a filesystem root or mount point, the
home folder, the current folder or one of its ancestors, and may not be, contain or lie inside
a source (the run directory or model file being read).

Replacement (`replacing`):

1. take OUT's lock file (`lock_path`) with `fcntl.flock` (a second writer of the same OUT
   waits, or with `wait=False` gets an error);
2. clean stale temporary folders `.<name>.tmp-<pid>-*` / `.<name>.old-<pid>-*` whose process
   is dead; an `.old` folder left where OUT is missing (a kill between the two renames of
   step 4) is renamed back to OUT first;
3. the caller writes into a fresh sibling `.<name>.tmp-<pid>-<random>`;
4. swap it in: Linux `renameat2(RENAME_EXCHANGE)` swaps the two folders atomically; where the
   filesystem lacks it, OUT is renamed aside to `.<name>.old-<pid>-<random>`, the new folder
   renamed to OUT (two renames, microseconds apart, and repaired by step 2 of the next run);
5. delete the old folder.

At every instant OUT is either the complete old folder or the complete new one.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


class OutDirError(ValueError):
    """An output folder that may not be written (a user error: one line, exit status 2)."""


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def check_target(out: str | os.PathLike, *, sources: Iterable[str | os.PathLike] = (),
                 what: str = "-o") -> Path:
    """`out` as a Path if it is a safe folder to (re)write, else OutDirError (see module)."""
    raw = os.fspath(out)
    if not raw.strip():
        raise OutDirError(f"{what} \"\": an empty output path (an unset variable?) would mean "
                          "the current folder; give a folder name")
    path = Path(raw)
    real = _real(path)
    if real == real.parent or os.path.ismount(real):
        raise OutDirError(f"{what} {raw}: is a filesystem root or mount point; give a folder "
                          "below it")
    for name, place in (("the home folder", Path.home()), ("the current folder", Path.cwd())):
        place = _real(place)
        if real == place or real in place.parents:
            raise OutDirError(f"{what} {raw}: is {name} or contains it; replacing it would "
                              "delete it; give a new folder")
    for source in sources:
        if not os.fspath(source):
            continue            # no source named; its reader reports that
        src = _real(Path(source))
        if real == src or real in src.parents:
            raise OutDirError(f"{what} {raw}: is or contains the source {source}; replacing it "
                              "would delete the source; give another folder")
        if src in real.parents:
            raise OutDirError(f"{what} {raw}: lies inside the source {source}; give a folder "
                              "outside it")
    if path.exists() and not path.is_dir():
        raise OutDirError(f"{what} {raw}: exists and is not a folder")
    return path


def check_replaceable(path: Path, *, force: bool, what: str = "-o") -> None:
    """OutDirError when `path` is a non-empty folder and `force` is not set."""
    if path.is_dir() and any(path.iterdir()) and not force:
        raise OutDirError(f"{what} {path} exists and is not empty; pass --force to replace it")


@contextmanager
def replacing(out: str | os.PathLike, *, force: bool = False,
              sources: Iterable[str | os.PathLike] = (), what: str = "-o",
              wait: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary folder beside OUT; when the block ends without an exception,
    atomically make it OUT (the old OUT is deleted afterwards). Raises OutDirError for an
    unsafe or (without `force`) non-empty OUT, and when another writer holds OUT and `wait`
    is False."""
    out = check_target(out, sources=sources, what=what)
    check_replaceable(out, force=force, what=what)
    out.parent.mkdir(parents=True, exist_ok=True)
    with locked(out, wait=wait, what=what):
        clean_stale(out)
        check_replaceable(out, force=force, what=what)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
        tmp.chmod(0o755)        # mkdtemp makes it private; OUT is an ordinary folder
        try:
            yield tmp
            old = _swap_in(tmp, out)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def clean_stale(out: Path) -> list[Path]:
    """Restore or delete the temporary folders of dead writers of OUT; returns those deleted.

    An `.old` folder whose writer died while OUT is missing is the complete old OUT: it is
    renamed back. Call with the lock held."""
    removed = []
    for path in sorted(out.parent.glob(f".{_glob_escape(out.name)}.*-*")):
        match = re.fullmatch(rf"\.{re.escape(out.name)}\.(tmp|old)-(\d+)-.+", path.name)
        if not match or not path.is_dir() or _alive(int(match.group(2))):
            continue
        if match.group(1) == "old" and not out.exists():
            os.rename(path, out)
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _swap_in(tmp: Path, out: Path) -> Path | None:
    """Make `tmp` OUT; returns the folder now holding the old OUT (to delete), or None."""
    if not out.exists():
        os.rename(tmp, out)
        return None
    if _exchange(tmp, out):
        return tmp
    old = out.parent / f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
    os.rename(out, old)
    os.rename(tmp, out)
    return old


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False when unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    res = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if res == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, f"cannot swap {a} and {b}: {os.strerror(err)}")


def lock_path(out: Path) -> Path:
    """The lock file of OUT: in the temp folder (nothing is left beside OUT), one per real
    path of OUT."""
    digest = hashlib.sha256(os.fsencode(_real(out))).hexdigest()[:24]
    folder = Path(tempfile.gettempdir()) / f"ttfs-sdk-locks-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / f"{digest}.lock"


@contextmanager
def locked(out: str | os.PathLike, *, wait: bool = True, what: str = "-o") -> Iterator[None]:
    """Hold OUT's lock (see `lock_path`) for the block: other writers of OUT wait, or with
    `wait=False` this raises OutDirError. Not re-entrant: `replacing` takes it too."""
    path = lock_path(out)
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise OutDirError(f"{what} {out}: another process is writing it (lock "
                                  f"{path}); wait for it to finish") from None
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _real(path: Path) -> Path:
    return Path(os.path.realpath(os.path.abspath(path)))


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)
