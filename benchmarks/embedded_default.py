"""The README's first command, `python -m timepoint`, on the embedded model, once per seed: does every
run end `completed` with at least one dialog and one training record, and at what cost in gaps and time?

    python benchmarks/embedded_default.py [--seeds 1-10] [--out embedded_default.json] [OVERRIDE ...]

Each seed runs as a user runs it — its own process, its own run directory and a cold cache — so the
figures are what a new user sees. Extra arguments are passed on as overrides.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def seeds(spec: str) -> list[int]:
    """`1-10` or `1,4,7`."""
    if "-" in spec:
        lo, hi = spec.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in spec.split(",")]


def run_seed(seed: int, overrides: list[str], folder: Path) -> dict:
    run_dir = folder / f"seed{seed}"
    env = {**os.environ, "TIMEPOINT_HOME": str(folder / f"home{seed}")}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "timepoint", f"seed={seed}", *overrides, f"hydra.run.dir={run_dir}"],
                          capture_output=True, text=True, env=env, cwd=folder)
    wall = time.perf_counter() - started
    try:
        summary = json.loads((run_dir / "run.json").read_text())
    except FileNotFoundError:
        return {"seed": seed, "exit": proc.returncode, "status": "no run.json", "error": proc.stderr[-300:],
                "wall_s": round(wall, 1)}
    counts = summary["counts"]
    caught = degenerate_caught(run_dir / "run.db")
    return {"seed": seed, "exit": proc.returncode, "status": summary["status"], "calls": summary["calls"]["total"],
            "gaps": len(summary["gaps"]), "gap_units": sorted({g["unit"].split(" (")[0] for g in summary["gaps"]}),
            "timepoints": counts["timepoints"], "dialogs": counts["dialogs"], "turns": counts["turns"],
            "records": counts["training_examples"], "caught": caught,
            "degenerate_share": round(caught / (caught + counts["turns"]), 3) if caught + counts["turns"] else None,
            "wall_s": round(wall, 1), "error": summary["error"]}


def degenerate_caught(db_path: Path) -> int:
    """Lines the dialogs' quality gate caught as degenerate (resampled or dropped): with the turns kept,
    the lines the characters wrote."""
    db = sqlite3.connect(db_path)
    try:
        return sum(json.loads(checks or "{}").get("degenerate_caught", 0)
                   for (checks,) in db.execute("SELECT quality_checks FROM dialogs"))
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1-10")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args, overrides = parser.parse_known_args()
    rows = []
    print(f"{'seed':>4} {'exit':>4} {'status':<10} {'calls':>5} {'gaps':>4} {'tps':>3} {'dialogs':>7} "
          f"{'turns':>5} {'records':>7} {'wall_s':>7}  gaps in", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for seed in seeds(args.seeds):
            r = run_seed(seed, overrides, Path(folder))
            rows.append(r)
            print(f"{r['seed']:>4} {r['exit']:>4} {r['status']:<10} {r.get('calls', 0):>5} {r.get('gaps', 0):>4} "
                  f"{r.get('timepoints', 0):>3} {r.get('dialogs', 0):>7} {r.get('turns', 0):>5} "
                  f"{r.get('records', 0):>7} {r['wall_s']:>7}  {', '.join(r.get('gap_units', []))}"
                  + (f"  error: {r['error']}" if r.get("error") else ""), flush=True)
    good = sum(r["status"] == "completed" and r.get("dialogs", 0) >= 1 and r.get("records", 0) >= 1 for r in rows)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{good} of {len(rows)} seeds completed with a dialog and a training record; "
          f"median wall {sorted(r['wall_s'] for r in rows)[len(rows) // 2]} s; peak RSS of a run {peak_mb:.0f} MB")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "completed_with_records": good}, indent=2) + "\n")


if __name__ == "__main__":
    main()
