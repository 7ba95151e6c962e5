"""FPGA target benchmark: trained mnist5k networks placed and routed on a real FPGA.

For every network (a run directory) and every parallel configuration (`--config`, target
options such as `num_pe=8`):

1. `ttfs-export RUN --target fpga` with the configuration and all `--images` test images as
   vectors (plus the export's corner vectors);
2. cycles per inference, mean and max over the test images, from the exact cycle model
   (`predicted_cycles` in the export's `tb/design.json`; the cocotb bench checks it on every
   vector), and synaptic operations per image from the golden trace (`vectors.npz`: `sops`);
3. synthesis, packing and place-and-route of the ACTUAL generated top on `--device`
   (`ttfs.codegen.fpga_flow.implement`: Yosys + nextpnr, best of the seeds, all numbers from their
   JSON reports): LUT / FF / block RAM / DSP used vs the device's capacity, fmax;
4. latency = cycles / fmax, mean and max, against the anchor: Liang et al. (ISCAS 2021),
   single-spike TTFS on a Xilinx VC707, 96 % on MNIST in 2.8 us per image.

Then the best iCE40 fit of a small network (`--small-run`, default a digits MLP 64-64-10) on
`--small-device` (default ice40-up5k): every `--small-config` is placed and routed, the fastest
that fits is simulated on Verilator and Icarus against the golden vectors (`ttfs-verify`).

Every export is made from a committed tree: `--commit` (default HEAD) is extracted with
`git archive` into `--work/src/<commit>` and `ttfs-export` runs from there, so the engineers'
uncommitted work in the checkout never reaches a table row; each row records its commit.
`--bit-exact N` simulates each big row's export on Verilator and Icarus over its first N vectors
(the corner vectors come first, then the test images) with `ttfs-verify --sim both --no-synth`
and records 0 mismatches or the first divergence.

Without `--run`, the networks are trained first with `ttfs-train` (sr+tr+tkbn, 1 torch thread,
nice), or reused from `--work`: the mnist5k MLP 784-256-10 (`--arch mlp`, 30 epochs) and CNN
(`--arch cnn`, 40 epochs). Exports are reused while the commit, run and options are the same;
place-and-route results and bit-exactness checks are cached in `--work` by the hash of the
generated RTL, device, seeds and nextpnr arguments, so a rerun only redoes what changed, and
separate runs (P&R here, simulation there) meet in one table with `--saved`. Every tool step's
seconds and the load average (1 min) at its start and end are recorded.

    .venv/bin/python bench/fpga.py                                  # train + everything
    .venv/bin/python bench/fpga.py --run runs/mlp --config num_pe=8 --config num_pe=32
    .venv/bin/python bench/fpga.py --run runs/cnn --device lfe5u-85f --seeds 1 2 --no-small
    .venv/bin/python bench/fpga.py --run runs/cnn --config device=lfe5u-85f --no-pnr \
        --bit-exact 137 --no-small                                   # 37 corners + 100 images
    .venv/bin/python bench/fpga.py --run runs/cnn --pnr-args "--router router2" ...
    .venv/bin/python bench/fpga.py --run runs/cnn --config device=lfe5u-85f@481b6b9 \
        --config device=lfe5u-85f --saved --doc docs/fpga.md     # rows of two commits
    .venv/bin/python bench/fpga.py ... --doc docs/fpga.md           # write the results section

--doc replaces the section between the two `<!-- bench/fpga.py results -->` markers at the end
of that file (appends it when absent).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import queue
import shlex
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ttfs.codegen import fpga_flow
from ttfs.sdk import vectors as vectors_mod

MARKER = "<!-- bench/fpga.py results -->"
ANCHOR = "Liang et al. (ISCAS 2021), single-spike TTFS on a Xilinx VC707: 96 % MNIST, 2.8 us"
AIMS = {  # network -> (mean latency us, fmax MHz or None, integer accuracy or None)
    "mlp": (2.8, 100.0, None),
    "cnn": (10.0, None, 0.975),
}
TRAIN = {  # name -> ttfs-train arguments
    "mlp": ["--dataset", "mnist5k", "--arch", "mlp", "--epochs", "30"],
    "cnn": ["--dataset", "mnist5k", "--arch", "cnn", "--epochs", "40"],
    "digits": ["--dataset", "digits", "--arch", "d64", "--epochs", "30"],
}
DEFAULT_CONFIGS = ["num_pe=8", "num_pe=32"]
SIMS = ("both", "verilator", "icarus")          # --sim values of ttfs-verify
NO_EXPORT = "not measured (no saved export)"    # --saved: such rows are left out
DEFAULT_SMALL_CONFIGS = ["num_pe=1,lanes=1", "num_pe=2,lanes=2", "num_pe=4,lanes=4",
                         "num_pe=8,lanes=8"]


REPO = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"[{time.strftime('%H:%M:%S')} load {load}] {message}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(x, 1) for x in os.getloadavg()]


def run(cmd: list[str], pythonpath: Path | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run a command at lowered priority with one torch/OpenMP thread; output captured.
    `pythonpath`: import the ttfs packages from there (a snapshot, `snapshot`)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(cmd, env=env, capture_output=True, text=True,
                          preexec_fn=lambda: os.nice(10), **kwargs)


def snapshot(rev: str, work: Path) -> tuple[str, Path]:
    """(commit hash, import root) of `rev` extracted by `git archive` into work/src/<commit>, with
    a `ttfs/<package>` link per folder of pyproject's package-dir (the editable install's import
    names), so that `PYTHONPATH=<import root> python -m ttfs.codegen.export_cli` runs exactly the
    committed code."""
    res = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", f"{rev}^{{commit}}"],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"error: --commit {rev!r}: not a commit of {REPO}")
    sha = res.stdout.strip()
    root = work / "src" / sha[:12]
    if not (root / ".pkg").exists():
        part = root.with_name(root.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", sha], capture_output=True,
                                 check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(part, filter="data")
        dirs = tomllib.loads((part / "pyproject.toml").read_text())["tool"]["setuptools"][
            "package-dir"]
        for name, folder in dirs.items():
            link = part / ".pkg" / Path(*name.split("."))
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(Path(*[".."] * len(name.split("."))) / folder)
        shutil.rmtree(root, ignore_errors=True)
        part.rename(root)
    return sha, root / ".pkg"


# ---------------------------------------------------------------- networks

def train(name: str, work: Path) -> Path:
    """The run directory of `name` (TRAIN), trained with ttfs-train unless already in `work`."""
    out = work / "runs" / name
    if (out / "model.safetensors").exists() and (out / "config.json").exists():
        return out
    log(f"training {name}: ttfs-train {' '.join(TRAIN[name])} (sr+tr+tkbn)")
    res = run([sys.executable, "-m", "ttfs.sdk.cli", *TRAIN[name], "--method", "sr+tr+tkbn",
               "--out", str(out), "--quiet", "--force"])
    if res.returncode != 0:
        raise SystemExit(f"error: training {name} failed:\n{res.stderr[-2000:]}")
    return out


def parse_config(text: str) -> dict[str, str]:
    """'num_pe=8,lanes=4' -> {'num_pe': '8', 'lanes': '4'}."""
    pairs = [item.split("=", 1) for item in text.split(",") if item]
    if any(len(p) != 2 or not p[0] for p in pairs):
        raise SystemExit(f"error: --config {text!r}: expected KEY=VALUE[,KEY=VALUE...]")
    return dict(pairs)


def export(run_dir: Path, name: str, config: dict, images: int, out: Path, commit: str,
           pythonpath: Path) -> dict:
    """`ttfs-export RUN --target fpga` with `config`, from the snapshot of `commit`; reused when
    the commit, run, options and images are those of the saved export. Returns the export's
    record: its tb/design.json under "design", plus commit, time, seconds, load."""
    h = hashlib.sha256()
    for f in ("config.json", "model.safetensors"):
        h.update((run_dir / f).read_bytes())
    what = {"commit": commit, "run": str(run_dir), "run_hash": h.hexdigest()[:20],
            "config": config, "images": images, "name": name}
    meta = out.parent / "export-meta.json"
    if meta.exists() and (out / "tb" / "design.json").exists():
        saved = json.loads(meta.read_text())
        if {k: saved.get(k) for k in what} == what:
            return dict(saved, design=json.loads((out / "tb" / "design.json").read_text()))
    cmd = [sys.executable, "-m", "ttfs.codegen.export_cli", str(run_dir), "--target", "fpga",
           "-o", str(out), "--name", name, "--vectors", str(images), "--force"]
    for key, value in config.items():
        cmd += ["--num-pe", value] if key == "num_pe" else ["--option", f"{key}={value}"]
    load0, t0 = loadavg(), time.monotonic()
    res = run(cmd, pythonpath)
    if res.returncode != 0:
        raise RuntimeError(f"ttfs-export failed ({res.returncode}): {res.stderr.strip()[-500:]}")
    record = dict(what, exported=time.strftime("%Y-%m-%d %H:%M:%S"),
                  seconds=round(time.monotonic() - t0, 1), load=[load0, loadavg()])
    meta.write_text(json.dumps(record, indent=1))
    return dict(record, design=json.loads((out / "tb" / "design.json").read_text()))


def describe(design: dict) -> str:
    """The configuration an export resolved to (the --device choice): num_pe, lanes, the ways
    and fire mode of its stages, conv taps per cycle where the stages say."""
    stages = design["stages"]
    parts = [f"num_pe {design['num_pe']}", f"lanes {design['lanes']}"]
    ways = max(s.get("ways", 1) for s in stages)   # exports before ways: one
    if ways > 1:
        parts.append(f"ways {ways}")
    serial = [s["name"] for s in stages if s.get("fire_serial")]
    if serial:
        parts.append("serial fire" + ("" if len(serial) == len(design["hidden"])
                                      else f" ({', '.join(serial)})"))
    taps = [f"{s['name']} {s['taps']}" for s in stages if s.get("taps", 1) > 1]
    if taps:
        parts.append("taps/cycle " + ", ".join(taps))
    return ", ".join(parts)


# ---------------------------------------------------------------- one row

@dataclass
class Row:
    network: str
    config: str
    device: str
    accuracy: float | None = None          # integer golden accuracy on the test images
    images: int = 0
    corners: int = 0
    cycles_mean: float | None = None
    cycles_max: int | None = None
    sops_mean: float | None = None
    impl: dict | None = None
    error: str | None = None
    bit_exact: list | str | None = None        # `bit_exact` results (a text: older benches)
    load: list = field(default_factory=list)   # 1/5/15-min load averages at P&R start, end
    commit: str | None = None
    resolved: str | None = None                 # `describe` of the export
    export_seconds: float | None = None
    folder: Path | None = None

    @property
    def fmax(self) -> float | None:
        return (self.impl or {}).get("fmax_mhz")

    def latency(self, cycles: float | None) -> float | None:
        return cycles / self.fmax if cycles is not None and self.fmax else None


def rtl_key(out: Path, design: dict, *extra) -> str:
    """What determines a result of the export `out` (besides `extra`: device, seeds, nextpnr
    arguments, vectors): every RTL and memory file and the top."""
    h = hashlib.sha256(json.dumps([design["top"], *extra]).encode())
    for path in sorted((out / "rtl").iterdir()):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:20]


def measure(run_dir: Path, network: str, config_text: str, device: str, args) -> Row:
    """Export one configuration, read its cycles and SOPs, place and route it (cached), check it
    bit-exact on both simulators when asked (cached). A configuration ending in `@REV` is
    exported from that commit instead of --commit (rows of several commits in one table)."""
    slug = config_text.replace("=", "").replace(",", "_") or "default"
    folder = args.work / network / slug
    row = Row(network, config_text, device, folder=folder)
    out = folder / "export"
    config_text, _, rev = config_text.partition("@")
    if rev and not args.saved:
        args = argparse.Namespace(**vars(args))
        args.commit, args.pythonpath = snapshot(rev, args.work)
    try:
        if args.saved:
            if not (out / "tb" / "design.json").exists():
                row.error = NO_EXPORT
                return row
            meta = folder / "export-meta.json"
            record = json.loads(meta.read_text()) if meta.exists() else {}
            design = json.loads((out / "tb" / "design.json").read_text())
        else:
            record = export(run_dir, f"{network}_net", parse_config(config_text), args.images,
                            out, args.commit, args.pythonpath)
            design = record.pop("design")
    except RuntimeError as exc:
        row.error = str(exc)
        return row
    row.commit, row.export_seconds = record.get("commit"), record.get("seconds")
    row.resolved = describe(design)
    vec = vectors_mod.load(out / "vectors.npz")
    image = np.asarray(vec.kind == "image") if vec.kind is not None else np.ones(len(vec), bool)
    cycles = np.asarray(design["predicted_cycles"])[image]
    row.images, row.corners = int(image.sum()), int((~image).sum())
    row.cycles_mean, row.cycles_max = float(cycles.mean()), int(cycles.max())
    row.sops_mean = float(vec.trace.sops[image].mean())
    if vec.labels is not None:
        row.accuracy = float(np.mean(vec.trace.classes[image] == vec.labels[image]))
    if args.bit_exact:
        row.bit_exact = [r for sim in (SIMS if args.saved else args.bit_exact_sim)
                         if (r := bit_exact(folder, design, args.bit_exact, sim, args))]
    if not args.no_pnr:
        place(row, folder, design, device, args)
    return row


def place(row: Row, folder: Path, design: dict, device: str, args) -> None:
    """Place and route the row's export on `device` (or take the cached result of this RTL)."""
    out = folder / "export"
    key = rtl_key(out, design, device, args.seeds, args.pnr_args)
    cache = folder / f"impl-{device}.json"
    cached = json.loads(cache.read_text()) if cache.exists() else {}
    if cached.get("key") == key or (args.saved and cached):
        row.impl, row.load = cached["impl"], cached["load"]
        row.bit_exact = row.bit_exact or cached.get("bit_exact")     # earlier bench versions
        log(f"{row.network} {row.config} {device}: cached ({row.impl['seconds']})")
        return
    if args.saved:
        row.error = "not placed (no saved result for this RTL)"
        return
    log(f"{row.network} {row.config} ({row.resolved}): place and route on {device}, "
        f"seeds {args.seeds} {' '.join(args.pnr_args)} ...")
    load0 = loadavg()
    try:
        impl = fpga_flow.implement([out / "rtl" / s for s in design["sources"]], design["top"],
                                   device, folder / f"build-{device}", seeds=tuple(args.seeds),
                                   timeout=args.timeout, nice=10, pnr_args=tuple(args.pnr_args))
    except fpga_flow.FlowError as exc:
        row.error = str(exc).splitlines()[0]
        return
    row.impl = impl.as_dict()
    row.load = [load0, loadavg()]
    cache.write_text(json.dumps({"key": key, "seeds": args.seeds, "pnr_args": args.pnr_args,
                                 "commit": row.commit, "impl": row.impl, "load": row.load,
                                 "finished": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1))
    log(f"  {impl.summary()} ({impl.seconds})")


def bit_exact(folder: Path, design: dict, n: int, sim: str, args) -> dict | None:
    """`ttfs-verify --sim SIM --no-synth` of `folder`'s export over its first n vectors (the
    corner vectors first) in chunks of `args.chunk` vectors, each chunk cached by the RTL, the
    simulator(s) and its vector range, so that a stopped run keeps what it checked (vectors that
    passed in an earlier run's chunks, of any size, are not run again); `args.jobs` chunks run
    at once. A chunk runs in a copy of the export (one folder per `sim` and job slot, so the
    simulator builds once per slot; separate `sim` values may run at the same time) holding
    that range of vectors.npz and of tb/design.json's per-vector lists;
    ttfs-verify also repeats a chunk's first 8 vectors with random input gaps and output
    back-pressure. `args.max_cycles` (for a slow simulator) keeps only those of the first n
    vectors whose predicted cycles are at most that. Returns {"sim", "ok", "vectors"
    (checked), "asked", "corners", "images", "max_cycles", "cases" (per simulator: passed,
    failed), "first_divergence" (vector numbers of the whole export), "seconds", "load"}, or
    None when nothing was checked."""
    out = folder / "export"
    with np.load(out / "vectors.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    total = len(arrays["inputs"])
    n = min(n, total)
    kind = arrays.get("kind", np.full(total, "image"))
    picked = np.arange(n)
    if args.max_cycles:
        picked = picked[np.asarray(design["predicted_cycles"][:n]) <= args.max_cycles]
    key = rtl_key(out, design)
    earlier = [json.loads(f.read_text()) for f in folder.glob(f"bitexact/{key}-{sim}-*.json")]
    if args.saved:                               # whatever chunks earlier runs left
        return _merge(sorted(earlier, key=lambda c: c["range"][0]), kind, sim, n,
                      args.max_cycles)
    wanted = set(picked.tolist())               # passed chunks of any size are not rerun
    kept = [c for c in earlier if c["ok"] and set(_rows(c)) <= wanted]
    picked = picked[~np.isin(picked, [i for c in kept for i in _rows(c)])]
    size = max(1, args.chunk or n)
    slots: queue.Queue[int] = queue.Queue()     # copies of the export, one per running chunk
    for slot in range(args.jobs):
        slots.put(slot)

    failed = threading.Event()                  # the first divergence is what matters

    def check(a: int) -> dict | None:
        rows = picked[a:a + size]
        tag = (f"{rows[0]}-{rows[-1] + 1}" if rows[-1] - rows[0] + 1 == len(rows) else
               hashlib.sha256(rows.tobytes()).hexdigest()[:12])
        cache = folder / "bitexact" / f"{key}-{sim}-{tag}.json"
        if not cache.exists():
            if failed.is_set():
                return None                      # not started: after a failed chunk
            cache.parent.mkdir(exist_ok=True)
            slot = slots.get()
            try:
                result = _verify_chunk(folder, design, arrays, rows, sim, slot, args)
            finally:
                slots.put(slot)
            cache.write_text(json.dumps(dict(result, asked=len(wanted),
                                             max_cycles=args.max_cycles), indent=1))
        result = json.loads(cache.read_text())
        if not result["ok"]:
            failed.set()
        return result

    with ThreadPoolExecutor(args.jobs) as pool:   # _merge stops at the first failed chunk
        chunks = [c for c in pool.map(check, range(0, len(picked), size)) if c]
    return _merge(sorted(kept + chunks, key=lambda c: c["range"][0]), kind, sim,
                  len(wanted), args.max_cycles)


def _rows(chunk: dict) -> list[int]:
    """The vector numbers a cached chunk checked."""
    return chunk.get("rows") or list(range(*chunk["range"]))


def _merge(chunks: list[dict], kind: np.ndarray, sim: str, asked: int,
           max_cycles: int) -> dict | None:
    """`bit_exact`'s result from its chunks (in order; up to the first failed one)."""
    chunks = chunks[:next((i + 1 for i, c in enumerate(chunks) if not c["ok"]), len(chunks))]
    if not chunks:
        return None
    asked = chunks[0].get("asked", asked)
    max_cycles = chunks[0].get("max_cycles", max_cycles)
    done = np.concatenate([np.asarray(_rows(c), int) for c in chunks])
    cases: dict[str, dict] = {}
    for c in chunks:
        for case in c["cases"]:
            into = cases.setdefault(case["name"], {"name": case["name"], "passed": 0,
                                                   "failed": 0})
            into["passed"] += case.get("passed") or 0
            into["failed"] += case.get("failed") or 0
    bad = next((c for c in chunks if not c["ok"]), None)
    div = dict(bad["first_divergence"] or {}) if bad else None
    if div and "sample" in div:
        div["sample"] = _rows(bad)[div["sample"]]
    return {"sim": sim, "ok": bad is None, "vectors": len(done), "asked": asked,
            "corners": int(np.sum(kind[done] == "corner")),
            "images": int(np.sum(kind[done] == "image")), "max_cycles": max_cycles,
            "cases": [c for c in cases.values() if c["name"] != "lint"],
            "first_divergence": div, "tail": bad["tail"] if bad else [],
            "seconds": round(sum(c["seconds"] for c in chunks), 1),
            "load": [chunks[0]["load"][0], chunks[-1]["load"][1]],
            "commit": chunks[0].get("commit"), "chunks": len(chunks)}


def _verify_chunk(folder: Path, design: dict, arrays: dict, rows: np.ndarray, simulator: str,
                  slot: int, args) -> dict:
    """ttfs-verify --sim SIMULATOR --no-synth of the vectors `rows` of `folder`'s export (see
    `bit_exact`) in the export's copy number `slot` (one per chunk running at once)."""
    out = folder / "export"
    sim = folder / (f"sim-{simulator}" + (f"-{slot}" if slot else ""))
    total = len(arrays["inputs"])
    if not (sim / "rtl").exists() or rtl_key(sim, design) != rtl_key(out, design):
        shutil.rmtree(sim, ignore_errors=True)
        shutil.copytree(out, sim)
    np.savez(sim / "vectors.npz", **{k: v[rows] if v.ndim and len(v) == total and k != "layers"
                                    else v for k, v in arrays.items()})
    part = dict(design, **{k: [design[k][i] for i in rows]
                           for k in ("predicted_cycles", "synaptic_ops")})
    (sim / "tb" / "design.json").write_text(json.dumps(part, indent=1) + "\n")
    log(f"{folder.parent.name} {folder.name}: ttfs-verify --sim {simulator}, vectors "
        f"{rows[0]}..{rows[-1]} ({len(rows)}, {sum(part['predicted_cycles']):,} cycles) ...")
    report = sim.parent / f"verify-{sim.name}.json"
    report.unlink(missing_ok=True)
    load0, t0 = loadavg(), time.monotonic()
    res = run([sys.executable, "-m", "ttfs.codegen.verify_cli", str(sim), "--sim", simulator,
               "--no-synth", "-q", "--json", str(report), "--build-dir",
               str(folder / "verify")], args.pythonpath)
    data = json.loads(report.read_text()) if report.exists() else {}
    result = {"ok": res.returncode == 0, "exit": res.returncode,
              "range": [int(rows[0]), int(rows[-1]) + 1], "rows": [int(i) for i in rows],
              "cases": [{k: c.get(k) for k in ("name", "status", "passed", "failed")}
                        for c in data.get("cases", [])],
              "first_divergence": data.get("first_divergence"),
              "timings": data.get("timings"),
              "tail": (res.stdout + res.stderr).strip().splitlines()[-2:],
              "seconds": round(time.monotonic() - t0, 1), "load": [load0, loadavg()],
              "commit": args.commit}
    if res.returncode not in (0, 1):             # no verdict (a crash, a missing tool)
        raise SystemExit(f"error: ttfs-verify exit {res.returncode} on {sim}: "
                         f"{' '.join(result['tail'])}")
    log(f"  {'0 mismatches' if result['ok'] else 'MISMATCH'} ({result['seconds']} s)")
    return result


def exact_text(result: list | dict | str | None) -> str:
    """'yes: 0 mismatches on verilator and icarus, 37 corner + 100 image vectors' or the miss
    (a list: one text per result, joined)."""
    if isinstance(result, list):
        return "; ".join(map(exact_text, result)) or "not checked"
    if not result or isinstance(result, str):
        return result or "not checked"
    over = f"{result['corners']} corner + {result['images']} image vectors"
    if result.get("max_cycles"):
        over += f" (those of at most {result['max_cycles']:,} cycles)"
    if result.get("vectors", 0) < result.get("asked", 0):
        over += f" (of the {result['asked']} asked: stopped)"
    if result["ok"]:
        sims = " and ".join(c["name"] for c in result["cases"]) or "Verilator and Icarus"
        return f"yes: 0 mismatches on {sims}, {over}"
    div = result.get("first_divergence")
    return (f"**NO** over {over}: "
            + (", ".join(f"{k} {v}" for k, v in div.items()) if div
               else (result.get("tail") or ["exit %s" % result.get("exit")])[0][:160]))


# ---------------------------------------------------------------- tables

def fmt(value, spec: str = ",.0f", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f} %"


def used(row: Row, res: str) -> str:
    if not row.impl:
        return "-"
    u, c = row.impl["used"][res], row.impl["capacity"][res]
    mark = " **over**" if res in row.impl["overflow"] else ""
    return f"{u:,} / {c:,}{mark}"


def seconds_text(row: Row) -> str:
    """'synth 640 + pack 60 + P&R 1,210 / 1,190 s (load 5.1-7.9)': the flow's steps."""
    sec = (row.impl or {}).get("seconds") or {}
    if not sec:
        return "-"
    seeds = [v for k, v in sec.items() if k.startswith("seed")]
    text = f"synth {sec.get('synth', 0):,.0f} + pack {sec.get('pack', 0):,.0f}"
    if seeds:
        text += " + P&R " + " / ".join(f"{v:,.0f}" for v in seeds)
    load = f" (load {row.load[0][1]}-{row.load[1][1]})" if len(row.load) == 2 and isinstance(
        row.load[0], list) else (f" (load {row.load[0]}-{row.load[1]})" if row.load else "")
    return text + " s" + load


def table(rows: list[Row]) -> list[str]:
    lines = ["| network | config (resolved) | commit | device | int. accuracy | cycles mean / max "
             "| LUT | FF | EBR | DSP | fmax MHz (per seed) | latency mean / max us "
             "| SOPs / image | tool seconds (load) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.error and not r.cycles_mean:
            lines.append(f"| {r.network} | {r.config} | - | {r.device} | error: {r.error} "
                         + "| " * 9 + "|")
            continue
        impl = r.impl or {}
        if impl and not impl["fits"]:
            fmax = "does not fit: " + ", ".join(impl["overflow"])
        elif impl and r.fmax:
            seeds = " / ".join(fmt(v, ".1f") for v in impl["fmax_per_seed"].values())
            fmax = f"**{fmt(r.fmax, '.1f')}** ({seeds})"
        else:
            fmax = r.error or "not placed"
        lat_mean, lat_max = r.latency(r.cycles_mean), r.latency(r.cycles_max)
        lat = f"{fmt(lat_mean, '.2f')} / {fmt(lat_max, '.2f')}" if lat_mean else "-"
        config = f"{r.config} ({r.resolved})" if r.resolved else r.config
        lines.append(
            f"| {r.network} | {config} | {(r.commit or '-')[:7]} | {r.device} "
            f"| {pct(r.accuracy)} | {fmt(r.cycles_mean, ',.1f')} / {fmt(r.cycles_max, ',')} "
            f"| {used(r, 'lut')} | {used(r, 'ff')} | {used(r, 'bram')} | {used(r, 'dsp')} "
            f"| {fmax} | {lat} | {fmt(r.sops_mean, ',.0f')} | {seconds_text(r)} |")
    return lines


def details(rows: list[Row]) -> list[str]:
    """Per placed row its critical path; per checked row its bit-exactness."""
    lines = []
    for r in rows:
        path = (r.impl or {}).get("critical_path")
        if path and r.fmax:
            lines.append(
                f"- {r.network} {r.config}, critical path at {r.fmax:.1f} MHz: {path['ns']} ns "
                f"({path['logic_ns']} logic in {path['cells']} cells, {path['routing_ns']} "
                f"routing) from `{path['from']}` to `{path['to']}`"
                + (f", RTL lines {', '.join(path['sources'][:6])}" if path["sources"] else "")
                + ".")
        for b in r.bit_exact if isinstance(r.bit_exact, list) else []:
            lines.append(f"- {r.network} {r.config}, bit-exact: {exact_text(b)} "
                         f"({b['seconds']:,.0f} s of ttfs-verify in {b['chunks']} "
                         f"run{'s' * (b['chunks'] != 1)}, 5-min load "
                         f"{b['load'][0][1]}-{b['load'][1][1]}).")
    return lines


def verdicts(rows: list[Row]) -> list[str]:
    """One line per aim: met or missed, with the best measured configuration."""
    lines = []
    for network, (lat_aim, fmax_aim, acc_aim) in AIMS.items():
        mine = [r for r in rows if r.network == network]
        if not mine:
            continue
        placed = [r for r in mine if r.latency(r.cycles_mean)]
        parts = []
        if placed:
            best = min(placed, key=lambda r: r.latency(r.cycles_mean))
            lat = best.latency(best.cycles_mean)
            ok = lat < lat_aim and (fmax_aim is None or best.fmax >= fmax_aim)
            parts.append(f"mean latency {lat:.2f} us at {best.fmax:.1f} MHz ({best.config}, "
                         f"{best.device}) against < {lat_aim} us"
                         + (f" at >= {fmax_aim:.0f} MHz" if fmax_aim else "")
                         + (" -- **met**" if ok else
                            f" -- **MISSED** ({lat / lat_aim:.1f}x the latency aim"
                            + (f", fmax {best.fmax:.1f} < {fmax_aim:.0f} MHz"
                               if fmax_aim and best.fmax < fmax_aim else "") + ")"))
        else:
            parts.append("no configuration placed and routed -- latency aim **not measured**")
        cycles = [r.cycles_mean for r in mine if r.cycles_mean]
        if cycles:
            parts.append(f"the fewest mean cycles ({min(cycles):,.1f}, "
                         f"{min(mine, key=lambda r: r.cycles_mean or 1e18).config}) need "
                         f"fmax >= {min(cycles) / lat_aim:,.0f} MHz for < {lat_aim} us")
        accs = [r.accuracy for r in mine if r.accuracy is not None]
        if acc_aim is not None and accs:
            parts.append(f"integer accuracy {pct(accs[0])} against >= {acc_aim * 100:.1f} % -- "
                         + ("**met**" if accs[0] >= acc_aim else "**MISSED**"))
        checked = [r for r in mine if r.bit_exact]
        parts += [f"bit-exact ({r.config}): {exact_text(r.bit_exact)}" for r in checked]
        if checked or network == "cnn":          # the CNN's acceptance asks for it
            done = {name for r in checked if isinstance(r.bit_exact, list)
                    for b in r.bit_exact if b["ok"] and b["images"] >= 100 and b["corners"]
                    for name in ((b["sim"],) if b["sim"] != "both" else SIMS[1:])}
            parts.append("0 mismatches on Verilator and Icarus over >= 100 test images plus "
                         "the corner vectors -- " + ("**met**" if done >= set(SIMS[1:]) else
                                                     "**not complete** (missing: "
                                                     + ", ".join(sorted(set(SIMS[1:]) - done))
                                                     + ")"))
        lines.append(f"- {network}: " + "; ".join(parts) + ".")
    return lines


def write_doc(path: Path, lines: list[str]) -> None:
    """Replace the section between the two MARKER lines of `path` (append when absent)."""
    text = path.read_text()
    block = f"{MARKER}\n" + "\n".join(lines) + f"\n{MARKER}\n"
    if text.count(MARKER) >= 2:
        head, _, rest = text.partition(MARKER)
        _, _, tail = rest.partition(MARKER)
        text = head + block + tail.lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)
    log(f"wrote {path}")


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--run", type=Path, action="append", default=[],
                    help="a trained run directory (repeatable; its name: mlp or cnn from the "
                         "config's arch); default: train or reuse both in --work")
    ap.add_argument("--config", action="append", default=None,
                    help=f"target options of one configuration, e.g. num_pe=8,lanes=8 "
                         f"(repeatable; default {' '.join(DEFAULT_CONFIGS)}); a trailing @REV "
                         f"exports it from that commit instead of --commit")
    ap.add_argument("--device", default="lfe5u-85f", choices=sorted(fpga_flow.DEVICES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--images", type=int, default=1000,
                    help="test images as vectors: cycles and SOPs are over these (default 1000)")
    ap.add_argument("--small-run", type=Path, default=None,
                    help="small network for the iCE40 (default: train digits 64-64-10)")
    ap.add_argument("--small-config", action="append", default=None)
    ap.add_argument("--small-device", default="ice40-up5k", choices=sorted(fpga_flow.DEVICES))
    ap.add_argument("--no-small", action="store_true", help="skip the iCE40 part")
    ap.add_argument("--no-big", action="store_true", help="only the iCE40 part")
    ap.add_argument("--no-pnr", action="store_true", help="export and cycles only")
    ap.add_argument("--saved", action="store_true",
                    help="no export, no tools: the table from the exports and place-and-route "
                         "results saved in --work by earlier runs")
    ap.add_argument("--verify-vectors", type=int, default=200,
                    help="vectors simulated for the iCE40 best fit (0 skips)")
    ap.add_argument("--bit-exact", type=int, default=0, metavar="N",
                    help="simulate every big row's export on Verilator and Icarus over its "
                         "first N vectors (corner vectors first; default 0: not)")
    ap.add_argument("--bit-exact-sim", nargs="+", default=["both"], choices=SIMS,
                    help="simulators of --bit-exact: both (one ttfs-verify --sim both per "
                         "chunk), or verilator and/or icarus checked separately (run "
                         "two benches at once, one per simulator)")
    ap.add_argument("--chunk", type=int, default=25,
                    help="--bit-exact checks this many vectors per ttfs-verify run (each "
                         "chunk's result is kept; default 25)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="--bit-exact runs this many chunks at once, each in its own copy of "
                         "the export (default 1; one core each)")
    ap.add_argument("--max-cycles", type=int, default=0, metavar="C",
                    help="--bit-exact: only the vectors whose predicted cycles are <= C (a "
                         "subset for a slow simulator; default 0: all)")
    ap.add_argument("--commit", default="HEAD",
                    help="export from this commit (a git archive snapshot; default HEAD)")
    ap.add_argument("--pnr-args", default="", metavar="ARGS",
                    help="extra nextpnr arguments of the place-and-route runs, e.g. "
                         "'--router router2'")
    ap.add_argument("--timeout", type=float, default=3 * 3600, help="seconds per tool run")
    ap.add_argument("--work", type=Path, default=Path("runs/bench-fpga"))
    ap.add_argument("--doc", type=Path, help="write the results section into this file")
    ap.add_argument("--note", default="", help="a sentence printed under the command line")
    args = ap.parse_args(argv)
    if args.jobs < 1 or args.chunk < 0:
        ap.error("--jobs must be at least 1 and --chunk at least 0")
    args.work = args.work.resolve()
    args.pnr_args = shlex.split(args.pnr_args)
    args.commit, args.pythonpath = (None, None) if args.saved else snapshot(args.commit,
                                                                            args.work)
    given = list(sys.argv[1:] if argv is None else argv)
    if "--note" in given:                       # the note is printed on its own line
        given[given.index("--note") + 1] = "..."
    command = "python bench/fpga.py " + shlex.join(given)
    started = time.time()

    runs = [] if args.no_big else [(network_name(r), r.resolve()) for r in args.run] or [
        (name, train(name, args.work)) for name in ("mlp", "cnn")]
    rows = [measure(run_dir, name, config, args.device, args)
            for name, run_dir in runs for config in (args.config or DEFAULT_CONFIGS)]
    rows = [r for r in rows if r.error != NO_EXPORT]
    small_rows: list[Row] = []
    best_small = None
    if not args.no_small:
        small = args.small_run.resolve() if args.small_run else train("digits", args.work)
        small_rows = [measure(small, "small", config, args.small_device, args)
                      for config in (args.small_config or DEFAULT_SMALL_CONFIGS)]
        fits = [r for r in small_rows if r.impl and r.impl["fits"] and r.fmax]
        best_small = min(fits, key=lambda r: r.latency(r.cycles_mean)) if fits else None
        if best_small and args.verify_vectors and not best_small.bit_exact:
            folder = best_small.folder
            design = json.loads((folder / "export" / "tb" / "design.json").read_text())
            best_small.bit_exact = [r for r in [bit_exact(folder, design, args.verify_vectors,
                                                          "both", args)] if r]

    when = ("assembled from the exports and place-and-route results saved by earlier runs"
            if args.saved else f"{time.time() - started:,.0f} s wall on 2 shared cores, "
            f"exports from commit {args.commit[:7]}; load average at the end "
            f"{os.getloadavg()[1]:.1f}") + ("; each row's tool seconds and 5-min load average "
                                            "(start-end) are in its last column")
    note = [args.note, ""] if args.note else []
    lines = [f"Command: `{command.strip()}` ({when})", "", *note,
             f"Anchor: {ANCHOR}.", "",
             "Latency = cycles / fmax; cycles from the exact cycle model over the test images "
             "(`predicted_cycles`), SOPs = synaptic operations of the golden trace; resources "
             "counted by nextpnr after packing, including the flow's I/O shell "
             "(`codegen/fpga_flow.py`: shift register in, registered XOR fold out); fmax: the "
             "best of the seeds in brackets (`nextpnr --report`"
             + (f", {shlex.join(args.pnr_args)}" if args.pnr_args else "") + "). "
             f"Tools: {tool_line(rows + small_rows)}.", ""]
    if rows:
        extra = details(rows)
        lines += table(rows) + [""] + (extra + [""] if extra else []) + verdicts(rows)
    if small_rows:
        what = (f"run {args.small_run}" if args.small_run
                else f"`ttfs-train {' '.join(TRAIN['digits'])} --method sr+tr+tkbn`")
        lines += ["", f"Small network on the {args.small_device} ({what}):", ""]
        lines += table(small_rows)
        best = best_small
        lines += [""] + ([f"Best {args.small_device} fit (lowest mean latency): {best.config}, "
                          f"{best.fmax:.1f} MHz, {best.latency(best.cycles_mean):.2f} us mean "
                          f"latency; bit-exact: {exact_text(best.bit_exact)}."] if best
                         else ["No configuration of the small network fits the "
                               f"{args.small_device}."])
    print("\n".join(lines))
    if args.doc:
        write_doc(args.doc, ["## Measured on real devices (`bench/fpga.py`)", ""] + lines)
    return 0


def network_name(run_dir: Path) -> str:
    """'mlp' or 'cnn' from the run's config (the aims are keyed by it), else the folder name."""
    config = json.loads((run_dir / "config.json").read_text())
    arch = config.get("arch")
    if arch in AIMS:
        return arch
    return "".join(c if c.isalnum() else "_" for c in run_dir.name)


def tool_line(rows: list[Row]) -> str:
    versions = {}
    for r in rows:
        versions.update((r.impl or {}).get("tools", {}))
    return ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) or "none run"


if __name__ == "__main__":
    sys.exit(main())
