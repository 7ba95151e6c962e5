"""`make demo`: the whole toolchain end to end on a built-in default.

    python -m ttfs.codegen.demo

1. train a TTFS MLP (sr+tr+tkbn) on mnist5k into runs/demo;
2. quantize it (8-bit weights and kernels) and compare the float SNN with the integer golden
   model on the 1,000 test images;
3. export the MCU target and check it on the host (gcc, strict and sanitized) and on an
   emulated Cortex-M (QEMU), with the flash/RAM table;
4. export the FPGA target and run its cocotb bench on Verilator, with cycles per inference and
   the Yosys resource table.

A few minutes on 2 CPU cores. Exit status 0 only when every check passed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ttfs.codegen import export_cli
from ttfs.sdk import report
from ttfs.sdk.cli import format_table, result_rows
from ttfs.sdk.train import TrainConfig, train

RUN_DIR = Path("runs/demo")
DEMO_CONFIG = TrainConfig(dataset="mnist5k", arch="mlp", method="sr+tr+tkbn", epochs=30)
#: Golden vectors per target (test images, besides the all-0 and all-255 images).
VECTORS = {"mcu": 100, "fpga": 20}


def train_demo(run_dir: Path = RUN_DIR, *, quiet: bool = False) -> tuple[Path, dict]:
    """Train the demo model into `run_dir` (replacing it); returns (run_dir, result)."""
    return run_dir, train(DEMO_CONFIG, run_dir, force=True, quiet=quiet)


def quantization_rows(run_dir: Path) -> list[tuple[str, str]]:
    """Float SNN against the integer golden model (default widths) on the whole test set."""
    cmp = report.compare_run(run_dir)
    return [("float SNN accuracy", f"{100 * cmp.float.accuracy:.2f} %"),
            ("integer golden accuracy", f"{100 * cmp.integer.accuracy:.2f} %"),
            ("float/integer class agreement", f"{100 * cmp.agreement:.2f} %"),
            ("float spikes per hidden neuron", f"{cmp.float.spikes_per_neuron:.4f}"),
            ("integer spikes per hidden neuron", f"{cmp.integer.spikes_per_neuron:.4f}"),
            ("test images", str(cmp.n_images))]


def export_and_verify(run_dir: Path, target: str) -> int:
    """`ttfs-export RUN --target T -o RUN-T --verify`; returns its exit status."""
    out = run_dir.with_name(f"{run_dir.name}-{target}")
    argv = [str(run_dir), "--target", target, "-o", str(out), "--force", "--verify",
            "--name", "demo", "--vectors", str(VECTORS[target])]
    print(f"\n== ttfs-export {' '.join(argv)}", flush=True)
    return export_cli.main(argv)


def main() -> int:
    start = time.perf_counter()
    print(f"== training {DEMO_CONFIG.arch} {DEMO_CONFIG.method} on {DEMO_CONFIG.dataset}, "
          f"{DEMO_CONFIG.epochs} epochs -> {RUN_DIR}", flush=True)
    run_dir, result = train_demo()
    print(format_table(result_rows(result)))
    print("\n== quantized to the integer model (weight_bits = kernel_bits = 8)")
    print(format_table(quantization_rows(run_dir)))
    statuses = {target: export_and_verify(run_dir, target) for target in ("mcu", "fpga")}
    print("\n== summary")
    print(format_table([(f"{target} check", "passed" if status == 0 else f"FAILED ({status})")
                        for target, status in statuses.items()]
                       + [("demo wall time", f"{time.perf_counter() - start:.0f} s")]))
    return 0 if all(status == 0 for status in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
