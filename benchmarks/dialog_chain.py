"""Steering horizons compared: the same templates and seed run with dialog.steering_horizon 1, 2, 3, ...

    python benchmarks/dialog_chain.py [--model test|local] [--templates board_meeting,jefferson_dinner]
                                      [--horizons 1,2,3] [--seeds 42,1,2] [--out dialog_chain.json] [OVERRIDE ...]

Turns within a dialog are sequential, so each dialog's steering and character calls form a chain of
dependent calls; a horizon of k plans k turns per steering call and shortens that chain. Per run it
reports the dialog calls per turn, the mean chain per dialog (and relative to the first horizon given),
the wall time, and the dialogs' mean
quality_score and voice_distinctiveness from the run store (what a shorter chain may cost). Each run is
its own process with a cold cache; on model=local (the embedded model, the judge of quality) a run
takes minutes, and a small model's scores vary from seed to seed: give several seeds, and read the
per-horizon means printed last. Extra arguments are passed on as overrides.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DIRECTOR = "You direct a multi-party conversation."  # how the dialog's steering prompt opens (dialog/graph.py)
COLUMNS = (("template", "<22"), ("seed", ">4"), ("k", ">2"), ("status", "<10"), ("dialogs", ">7"), ("turns", ">5"),
           ("steering", ">8"), ("character", ">9"), ("calls/turn", ">10"), ("chain/dialog", ">12"),
           ("chain_rel", ">9"), ("wall_s", ">7"), ("quality", ">7"), ("voice", ">6"))


def run(template: str, seed: int, horizon: int, args: argparse.Namespace, overrides: list[str], folder: Path) -> dict:
    run_dir = folder / f"{template}-s{seed}-k{horizon}"
    env = {**os.environ, "TIMEPOINT_HOME": str(folder / f"home-{template}-s{seed}-k{horizon}")}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "timepoint", f"model={args.model}", f"template={template}",
                           f"seed={seed}", f"dialog.steering_horizon={horizon}", *overrides,
                           f"hydra.run.dir={run_dir}"], capture_output=True, text=True, env=env, cwd=folder)
    row = {"template": template, "seed": seed, "k": horizon, "wall_s": round(time.perf_counter() - started, 1)}
    if not (run_dir / "run.db").exists():
        return row | {"status": f"exit {proc.returncode}", "error": proc.stderr[-300:]}
    db = sqlite3.connect(run_dir / "run.db")
    scores = db.execute("SELECT quality_score, voice_distinctiveness FROM dialogs").fetchall()
    turns = db.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
    steering, character = dialog_calls(run_dir / "calls.jsonl")
    return row | {
        "status": json.loads((run_dir / "run.json").read_text())["status"], "dialogs": len(scores), "turns": turns,
        "steering": steering, "character": character,
        "calls/turn": round((steering + character) / turns, 3) if turns else None,
        "chain/dialog": round((steering + character) / len(scores), 2) if scores else None,
        "quality": _mean(q for q, _ in scores), "voice": _mean(v for _, v in scores)}


MEANS = ("dialogs", "calls/turn", "chain_rel", "wall_s", "quality", "voice")


def dialog_calls(log: Path) -> tuple[int, int]:
    """Dialog steering and character calls in the call log; the modes' own planning calls share the
    steering role, so steering is told by its system message."""
    steering = character = 0
    for line in log.open():
        call = json.loads(line)
        if call["role"] == "steering" and call["messages"][0]["content"].startswith(DIRECTOR):
            steering += 1
        character += call["role"] == "dialog"
    return steering, character


def _mean(values) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.fmean(present), 4) if present else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("test", "local"), default="test")
    parser.add_argument("--templates", default="board_meeting,jefferson_dinner,mars_mission_portal")
    parser.add_argument("--horizons", default="1,2,3")
    parser.add_argument("--seeds", default="42")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args, overrides = parser.parse_known_args()
    horizons = [int(k) for k in args.horizons.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    print(" ".join(f"{name:{fmt}}" for name, fmt in COLUMNS), flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for template in args.templates.split(","):
            for seed in seeds:
                for horizon in horizons:
                    row = run(template, seed, horizon, args, overrides, Path(folder))
                    first = next((r for r in rows if (r["template"], r["seed"], r["k"]) == (template, seed, horizons[0])),
                                 row)
                    if row.get("chain/dialog") and first.get("chain/dialog"):
                        row["chain_rel"] = round(row["chain/dialog"] / first["chain/dialog"], 3)
                    rows.append(row)
                    print(" ".join(f"{_shown(row.get(name)):{fmt}}" for name, fmt in COLUMNS)
                          + (f"  error: {row['error']}" if row.get("error") else ""), flush=True)
    means = [{"k": k, **{name: _mean(r.get(name) for r in rows if r["k"] == k) for name in MEANS},
              "runs": sum(r["k"] == k for r in rows)} for k in horizons]
    print("\nper horizon, mean over templates and seeds:")
    print(" ".join(f"{name:>12}" for name in ("k", *MEANS)))
    for m in means:
        print(" ".join(f"{_shown(m[name]):>12}" for name in ("k", *MEANS)))
    if args.out:
        args.out.write_text(json.dumps({"model": args.model, "seeds": seeds, "rows": rows, "means": means},
                                       indent=2) + "\n")


def _shown(value) -> str:
    return "-" if value is None else str(value)


if __name__ == "__main__":
    main()
