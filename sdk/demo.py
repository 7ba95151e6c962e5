"""`make demo`: train a TTFS MLP (sr+tr+tkbn) on mnist5k into runs/demo and print the result.

    python -m sdk.demo

About 15 s on 2 idle CPU cores. The training step is `train_demo`, so later steps (export,
verify) can build on the run directory it returns.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sdk.cli import format_table, result_rows
from sdk.train import TrainConfig, train

RUN_DIR = Path("runs/demo")
DEMO_CONFIG = TrainConfig(dataset="mnist5k", arch="mlp", method="sr+tr+tkbn", epochs=30)


def train_demo(run_dir: Path = RUN_DIR, *, quiet: bool = False) -> tuple[Path, dict]:
    """Train the demo model into `run_dir` (replacing it); returns (run_dir, result)."""
    return run_dir, train(DEMO_CONFIG, run_dir, force=True, quiet=quiet)


def main() -> int:
    start = time.perf_counter()
    run_dir, result = train_demo()
    print(f"== ttfs-sdk demo: {DEMO_CONFIG.arch} {DEMO_CONFIG.method} on "
          f"{DEMO_CONFIG.dataset}, {DEMO_CONFIG.epochs} epochs -> {run_dir}")
    print(format_table(result_rows(result) + [
        ("demo wall time", f"{time.perf_counter() - start:.1f} s")]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
