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

Without `--run`, the networks are trained first with `ttfs-train` (sr+tr+tkbn, 1 torch thread,
nice), or reused from `--work`: the mnist5k MLP 784-256-10 (`--arch mlp`, 30 epochs) and CNN
(`--arch cnn`, 40 epochs). Place-and-route results are cached in `--work` by the hash of the
generated RTL, device and seeds, so a rerun only redoes what changed.

    .venv/bin/python bench/fpga.py                                  # train + everything
    .venv/bin/python bench/fpga.py --run runs/mlp --config num_pe=8 --config num_pe=32
    .venv/bin/python bench/fpga.py --run runs/cnn --device lfe5u-85f --seeds 1 2 --no-small
    .venv/bin/python bench/fpga.py ... --doc docs/fpga.md           # write the results section

--doc replaces the section between the two `<!-- bench/fpga.py results -->` markers at the end
of that file (appends it when absent).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
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
DEFAULT_SMALL_CONFIGS = ["num_pe=1,lanes=1", "num_pe=2,lanes=2", "num_pe=4,lanes=4",
                         "num_pe=8,lanes=8"]


def log(message: str) -> None:
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"[{time.strftime('%H:%M:%S')} load {load}] {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command at lowered priority with one torch/OpenMP thread; output captured."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run(cmd, env=env, capture_output=True, text=True,
                          preexec_fn=lambda: os.nice(10), **kwargs)


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


def export(run_dir: Path, name: str, config: dict, images: int, out: Path) -> dict:
    """`ttfs-export RUN --target fpga` with `config`; returns tb/design.json."""
    cmd = [sys.executable, "-m", "ttfs.codegen.export_cli", str(run_dir), "--target", "fpga",
           "-o", str(out), "--name", name, "--vectors", str(images), "--force"]
    for key, value in config.items():
        cmd += ["--num-pe", value] if key == "num_pe" else ["--option", f"{key}={value}"]
    res = run(cmd)
    if res.returncode != 0:
        raise RuntimeError(f"ttfs-export failed ({res.returncode}): {res.stderr.strip()[-500:]}")
    return json.loads((out / "tb" / "design.json").read_text())


# ---------------------------------------------------------------- one row

@dataclass
class Row:
    network: str
    config: str
    device: str
    accuracy: float | None = None          # integer golden accuracy on the test images
    images: int = 0
    cycles_mean: float | None = None
    cycles_max: int | None = None
    sops_mean: float | None = None
    impl: dict | None = None
    error: str | None = None
    bit_exact: str | None = None
    load: list = field(default_factory=list)

    @property
    def fmax(self) -> float | None:
        return (self.impl or {}).get("fmax_mhz")

    def latency(self, cycles: float | None) -> float | None:
        return cycles / self.fmax if cycles is not None and self.fmax else None


def rtl_key(out: Path, design: dict, device: str) -> str:
    """What determines a place-and-route result (besides the seeds): every RTL and memory file,
    the top, the device."""
    h = hashlib.sha256(json.dumps([device, design["top"]]).encode())
    for path in sorted((out / "rtl").iterdir()):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:20]


def measure(run_dir: Path, network: str, config_text: str, device: str, args) -> Row:
    """Export one configuration, read its cycles and SOPs, place and route it (cached)."""
    row = Row(network, config_text, device)
    slug = config_text.replace("=", "").replace(",", "_") or "default"
    folder = args.work / network / slug
    out = folder / "export"
    try:
        if args.saved:
            if not (out / "tb" / "design.json").exists():
                row.error = "not measured (no saved export)"
                return row
            design = json.loads((out / "tb" / "design.json").read_text())
        else:
            design = export(run_dir, f"{network}_net", parse_config(config_text), args.images,
                            out)
    except RuntimeError as exc:
        row.error = str(exc)
        return row
    vec = vectors_mod.load(out / "vectors.npz")
    image = np.asarray(vec.kind == "image") if vec.kind is not None else np.ones(len(vec), bool)
    cycles = np.asarray(design["predicted_cycles"])[image]
    row.images = int(image.sum())
    row.cycles_mean, row.cycles_max = float(cycles.mean()), int(cycles.max())
    row.sops_mean = float(vec.trace.sops[image].mean())
    if vec.labels is not None:
        row.accuracy = float(np.mean(vec.trace.classes[image] == vec.labels[image]))
    if args.no_pnr:
        return row
    key = rtl_key(out, design, device)
    cache = folder / f"impl-{device}.json"
    cached = json.loads(cache.read_text()) if cache.exists() else {}
    if cached.get("key") == key and (args.saved or cached.get("seeds") == args.seeds):
        row.impl, row.load = cached["impl"], cached["load"]
        row.bit_exact = cached.get("bit_exact")
        log(f"{network} {config_text} {device}: cached ({row.impl['seconds']})")
        return row
    if args.saved:
        row.error = "not placed (no saved result for this RTL)"
        return row
    log(f"{network} {config_text}: place and route on {device}, seeds {args.seeds} ...")
    load0 = os.getloadavg()[1]
    try:
        impl = fpga_flow.implement([out / "rtl" / s for s in design["sources"]], design["top"],
                                   device, folder / f"build-{device}", seeds=tuple(args.seeds),
                                   timeout=args.timeout, nice=10)
    except fpga_flow.FlowError as exc:
        row.error = str(exc).splitlines()[0]
        return row
    row.impl = impl.as_dict()
    row.load = [round(load0, 1), round(os.getloadavg()[1], 1)]
    cache.write_text(json.dumps({"key": key, "seeds": args.seeds, "impl": row.impl,
                                 "load": row.load}, indent=1))
    log(f"  {impl.summary()} ({impl.seconds})")
    return row


def verify(folder: Path, device: str, n: int) -> str:
    """Bit-exactness of `folder`'s export on Verilator and Icarus over its first n vectors
    (recorded beside its place-and-route result)."""
    cache = folder / f"impl-{device}.json"
    saved = json.loads(cache.read_text())
    if saved.get("bit_exact"):
        return saved["bit_exact"]
    out = folder / "export"
    res = run([sys.executable, "-m", "ttfs.codegen.verify_cli", str(out), "--sim", "both",
               "--no-synth", "--vectors", str(n), "-q"])
    tail = (res.stdout + res.stderr).strip().splitlines()[-1:] or [""]
    saved["bit_exact"] = (f"yes, Verilator and Icarus, {n} vectors" if res.returncode == 0
                          else f"NO (ttfs-verify exit {res.returncode}: {tail[0][:120]})")
    cache.write_text(json.dumps(saved, indent=1))
    return saved["bit_exact"]


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


def table(rows: list[Row]) -> list[str]:
    lines = ["| network | config | device | int. accuracy | cycles mean / max | LUT | FF "
             "| EBR | DSP | fmax MHz (per seed) | latency mean / max us | SOPs / image "
             "| P&R s (load) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.error and not r.cycles_mean:
            lines.append(f"| {r.network} | {r.config} | {r.device} | error: {r.error} "
                         + "| " * 9 + "|")
            continue
        impl = r.impl or {}
        if impl and not impl["fits"]:
            fmax = "does not fit: " + ", ".join(impl["overflow"])
        elif impl:
            seeds = " / ".join(fmt(v, ".1f") for v in impl["fmax_per_seed"].values())
            fmax = f"**{fmt(r.fmax, '.1f')}** ({seeds})"
        else:
            fmax = r.error or "not placed"
        lat_mean, lat_max = r.latency(r.cycles_mean), r.latency(r.cycles_max)
        lat = f"{fmt(lat_mean, '.2f')} / {fmt(lat_max, '.2f')}" if lat_mean else "-"
        pnr = (f"{impl['seconds'].get('total', 0):,.0f} ({r.load[0]}-{r.load[1]})"
               if impl else "-")
        lines.append(
            f"| {r.network} | {r.config} | {r.device} | {pct(r.accuracy)} "
            f"| {fmt(r.cycles_mean, ',.1f')} / {fmt(r.cycles_max, ',')} "
            f"| {used(r, 'lut')} | {used(r, 'ff')} | {used(r, 'bram')} | {used(r, 'dsp')} "
            f"| {fmax} | {lat} | {fmt(r.sops_mean, ',.0f')} | {pnr} |")
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
                         f"(repeatable; default {' '.join(DEFAULT_CONFIGS)})")
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
    ap.add_argument("--timeout", type=float, default=3 * 3600, help="seconds per tool run")
    ap.add_argument("--work", type=Path, default=Path("runs/bench-fpga"))
    ap.add_argument("--doc", type=Path, help="write the results section into this file")
    ap.add_argument("--note", default="", help="a sentence printed under the command line")
    args = ap.parse_args(argv)
    args.work = args.work.resolve()
    given = list(sys.argv[1:] if argv is None else argv)
    if "--note" in given:                       # the note is printed on its own line
        given[given.index("--note") + 1] = "..."
    command = "python bench/fpga.py " + shlex.join(given)
    started = time.time()

    runs = [] if args.no_big else [(network_name(r), r.resolve()) for r in args.run] or [
        (name, train(name, args.work)) for name in ("mlp", "cnn")]
    rows = [measure(run_dir, name, config, args.device, args)
            for name, run_dir in runs for config in (args.config or DEFAULT_CONFIGS)]
    small_rows: list[Row] = []
    best_small = None
    if not args.no_small:
        small = args.small_run.resolve() if args.small_run else train("digits", args.work)
        small_rows = [measure(small, "small", config, args.small_device, args)
                      for config in (args.small_config or DEFAULT_SMALL_CONFIGS)]
        fits = [r for r in small_rows if r.impl and r.impl["fits"] and r.fmax]
        best_small = min(fits, key=lambda r: r.latency(r.cycles_mean)) if fits else None
        if best_small and args.verify_vectors:
            best = best_small
            slug = best.config.replace("=", "").replace(",", "_")
            if not best.bit_exact and not args.saved:
                log(f"small {best.config}: ttfs-verify on Verilator and Icarus ...")
                best.bit_exact = verify(args.work / "small" / slug, args.small_device,
                                        args.verify_vectors)

    when = ("assembled from the exports and place-and-route results saved by earlier runs; "
            "each row's P&R seconds and load average (start-end) are in its last column"
            if args.saved else f"{time.time() - started:,.0f} s wall on 2 shared cores; load "
            f"average at the end {os.getloadavg()[1]:.1f}")
    note = [args.note, ""] if args.note else []
    lines = [f"Command: `{command.strip()}` ({when})", "", *note,
             f"Anchor: {ANCHOR}.", "",
             "Latency = cycles / fmax; cycles from the exact cycle model over the test images "
             "(`predicted_cycles`), SOPs = synaptic operations of the golden trace; resources "
             "counted by nextpnr after packing, including the flow's I/O shell "
             "(`codegen/fpga_flow.py`: shift register in, registered XOR fold out); fmax: the "
             "best of the seeds in brackets (`nextpnr --report`). "
             f"Tools: {tool_line(rows + small_rows)}.", ""]
    if rows:
        lines += table(rows) + [""] + verdicts(rows)
    if small_rows:
        what = (f"run {args.small_run}" if args.small_run
                else f"`ttfs-train {' '.join(TRAIN['digits'])} --method sr+tr+tkbn`")
        lines += ["", f"Small network on the {args.small_device} ({what}):", ""]
        lines += table(small_rows)
        best = best_small
        lines += [""] + ([f"Best {args.small_device} fit (lowest mean latency): {best.config}, "
                          f"{best.fmax:.1f} MHz, {best.latency(best.cycles_mean):.2f} us mean "
                          f"latency; bit-exact: {best.bit_exact or 'not checked'}."] if best
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
