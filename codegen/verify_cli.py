"""`ttfs-verify OUT`: re-run the checks of an exported folder (its export.json names the target).

Exit status 0 when the target's report passes, 1 on mismatches, 2 on user errors (missing or
invalid export.json, missing tools, ...), printed as one line `error: ...` on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codegen.export_cli import EXPORT_FILE, USER_ERRORS, load_target, print_report
from codegen.targets import ExportError


def read_export(out: Path) -> dict:
    """OUT/export.json as written by ttfs-export; raises ExportError."""
    path = out / EXPORT_FILE
    try:
        record = json.loads(path.read_text())
    except OSError as exc:
        raise ExportError(f"{path}: cannot read ({exc.strerror}); is {out} a ttfs-export "
                          "folder?") from None
    except ValueError as exc:
        raise ExportError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get("target"), str):
        raise ExportError(f"{path}: no 'target' field")
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ttfs-verify", description="Re-run the checks of a "
                                "folder written by ttfs-export against its golden vectors.")
    p.add_argument("out", type=Path, help="the folder written by ttfs-export")
    args = p.parse_args(argv)
    try:
        target = load_target(read_export(args.out)["target"])
        report = target.verify(args.out)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_report(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
