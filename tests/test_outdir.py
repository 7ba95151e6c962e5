"""Output folders are never lost (sdk/outdir.py, used by ttfs-export and ttfs-train --out)."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ttfs.codegen import export_cli
from ttfs.sdk import ir, outdir, randnet


def tree(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file below `folder`."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def model_file(tmp_path) -> Path:
    path = tmp_path / "src" / "tiny.ttfs"
    path.parent.mkdir()
    ir.save(randnet.random_network(4, plan="mlp", name="tiny"), path)
    return path


def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("out, message", [
    ("", "an empty output path"),
    (".", "is the current folder or contains it"),
    ("..", "is the current folder or contains it"),
    ("/", "is a filesystem root"),
    ("~", "is the home folder or contains it"),
    ("src", "is or contains the source"),
    ("src/tiny.ttfs", "is or contains the source"),
])
def test_dangerous_out_is_refused_and_nothing_deleted(model_file, tmp_path, monkeypatch,
                                                      capsys, out, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("keep")
    before = tree(tmp_path)
    out = os.path.expanduser(out)
    code = export_cli.main(["src/tiny.ttfs", "--target", "golden", "-o", out, "--force"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: -o ") and message in err, err
    assert err.count("\n") == 1
    assert tree(tmp_path) == before


def test_source_run_directory_is_protected(model_file, tmp_path):
    run = tmp_path / "runs" / "mlp"
    run.mkdir(parents=True)
    for out, message in ((run, "is or contains the source"),
                         (tmp_path / "runs", "is or contains the source"),
                         (run / "export", "lies inside the source")):
        with pytest.raises(outdir.OutDirError, match=message):
            outdir.check_target(out, sources=[run])


def test_replacing_is_atomic_on_success_and_on_error(tmp_path):
    out = tmp_path / "out"
    with outdir.replacing(out) as tmp:
        (tmp / "a.txt").write_text("one")
    assert tree(out).keys() == {"a.txt"}
    with pytest.raises(outdir.OutDirError, match="exists and is not empty; pass --force"):
        with outdir.replacing(out):
            pass
    with pytest.raises(RuntimeError, match="boom"):
        with outdir.replacing(out, force=True) as tmp:
            (tmp / "b.txt").write_text("two")
            raise RuntimeError("boom")
    assert (out / "a.txt").read_text() == "one" and not (out / "b.txt").exists()
    with outdir.replacing(out, force=True) as tmp:
        (tmp / "b.txt").write_text("two")
    assert tree(out).keys() == {"b.txt"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_replacing_without_rename_exchange(tmp_path, monkeypatch):
    monkeypatch.setattr(outdir, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    for text in ("one", "two"):
        with outdir.replacing(out, force=True) as tmp:
            (tmp / "f.txt").write_text(text)
    assert (out / "f.txt").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_stale_folders_of_dead_writers_are_cleaned_or_restored(tmp_path):
    out, pid = tmp_path / "out", dead_pid()
    (tmp_path / f".out.tmp-{pid}-abc").mkdir()
    old = tmp_path / f".out.old-{pid}-def"
    old.mkdir()
    (old / "model.ttfs").write_text("the old OUT")
    live = tmp_path / f".out.tmp-{os.getppid()}-xyz"      # a live writer's: kept
    live.mkdir()
    with outdir.replacing(out, force=True) as tmp:
        # the old OUT was restored before the new one is written
        assert (out / "model.ttfs").read_text() == "the old OUT"
        (tmp / "model.ttfs").write_text("new")
    assert (out / "model.ttfs").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", live.name])


def test_a_second_writer_waits_or_is_refused(tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom ttfs.sdk import outdir\n"
         f"with outdir.replacing({str(out)!r}) as tmp:\n"
         "    print('in', flush=True); time.sleep(1.5)\n"
         "    (tmp / 'who').write_text('first')\n"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "in\n"
    with pytest.raises(outdir.OutDirError, match="another process is writing it"):
        with outdir.replacing(out, force=True, wait=False):
            pass
    start = time.monotonic()
    with outdir.replacing(out, force=True) as tmp:       # waits for the first writer
        assert (out / "who").read_text() == "first"
        (tmp / "who").write_text("second")
    assert time.monotonic() - start > 0.2
    assert holder.wait() == 0 and (out / "who").read_text() == "second"


def test_kill_9_never_loses_out(model_file, tmp_path):
    """20 replacing exports killed at random moments: OUT is the complete old or the complete
    new export every time (file lists and hashes)."""
    def argv(out, n):
        return [sys.executable, "-m", "ttfs.codegen.export_cli", str(model_file), "--target",
                "golden", "-o", str(out), "--force", "--vectors", str(n)]

    ref_old, ref_new = tmp_path / "ref_old", tmp_path / "ref_new"
    start = time.monotonic()
    subprocess.run(argv(ref_old, 3), check=True, capture_output=True)
    seconds = time.monotonic() - start
    subprocess.run(argv(ref_new, 5), check=True, capture_output=True)
    old, new = tree(ref_old), tree(ref_new)
    assert old != new and len(old) == 3
    out, rng, outcomes = tmp_path / "out", random.Random(0), []
    subprocess.run(argv(out, 3), check=True, capture_output=True)
    for _ in range(20):
        proc = subprocess.Popen(argv(out, 5 if tree(out) == old else 3),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.1) * seconds)
        proc.kill()
        proc.wait()
        now = tree(out)
        assert now in (old, new), f"OUT is neither the old nor the new export: {sorted(now)}"
        outcomes.append(proc.returncode)
    assert outcomes.count(-9) >= 5          # most runs were really killed midway
    subprocess.run(argv(out, 5), check=True, capture_output=True)   # cleans up after them
    assert tree(out) == new
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "ref_new", "ref_old", "src"]
