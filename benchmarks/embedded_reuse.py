"""Prompt reuse on the embedded model: the README's first command at one seed, in one run of this script on
one machine, three ways:

- `before`: the embedded run's settings before prompt reuse: no kept prompt states (`model.prompt_cache_mb=0`;
  llama.cpp still reuses the previous prompt's prefix), an 8192-token context and steering every turn
  (`dialog.steering_horizon=1`). Prompts keep today's stable-first order, so this is faster than the old code was;
- `reuse_off`: today's defaults but no kept prompt states;
- `now`: today's defaults.

    python benchmarks/embedded_reuse.py [--seed 42] [--out embedded_reuse.json] [OVERRIDE ...]

Each variant runs as a user runs it — its own process, run directory and an empty response cache
(`cache.mode=off`), so every call reaches the model — and reports wall time, the prompt tokens sent and
how many of them llama.cpp evaluated, and the process's peak resident memory. Targets: `now` at least 2x
faster than `before`; peak RSS at most 700 MB. Extra arguments are passed on as overrides.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEEDUP_TARGET = 2.0
RSS_TARGET_MB = 700


VARIANTS = {"before": ["model.prompt_cache_mb=0", "model.context_length=8192", "dialog.steering_horizon=1"],
            "reuse_off": ["model.prompt_cache_mb=0"],
            "now": []}


def run(name: str, seed: int, overrides: list[str], folder: Path) -> dict:
    """One run in its own process; its peak RSS comes from wait4 on that process alone."""
    run_dir = folder / name
    env = {**os.environ, "TIMEPOINT_HOME": str(folder / f"home_{name}")}
    command = [sys.executable, "-m", "timepoint", f"seed={seed}", "cache.mode=off", *overrides, *VARIANTS[name],
               f"hydra.run.dir={run_dir}"]
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    error = proc.stderr.read()[-300:]
    summary = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    tokens = summary.get("tokens", {})
    return {"variant": name, "overrides": VARIANTS[name], "exit": os.waitstatus_to_exitcode(status),
            "status": summary.get("status", "no run.json"), "calls": summary.get("calls", {}).get("total"),
            "dialogs": summary.get("counts", {}).get("dialogs"), "tokens_in": tokens.get("in"),
            "tokens_reused": tokens.get("reused"),
            "tokens_evaluated": (tokens["in"] - tokens["reused"]) if tokens else None,
            "tokens_out": tokens.get("out"), "wall_s": round(wall, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024),
            "error": None if summary.get("status") == "completed" else error}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="also write the rows and ratios as JSON")
    args, overrides = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as folder:
        rows = {name: run(name, args.seed, overrides, Path(folder)) for name in VARIANTS}
    print(f"{'variant':<10} {'status':<10} {'calls':>5} {'dialogs':>7} {'prompt in':>9} {'evaluated':>9} "
          f"{'reused':>7} {'out':>6} {'wall_s':>7} {'peak RSS':>9}")
    for r in rows.values():
        print(f"{r['variant']:<10} {r['status']:<10} {r['calls'] or 0:>5} {r['dialogs'] or 0:>7} "
              f"{r['tokens_in'] or 0:>9} {r['tokens_evaluated'] or 0:>9} {r['tokens_reused'] or 0:>7} "
              f"{r['tokens_out'] or 0:>6} {r['wall_s']:>7.1f} {r['peak_rss_mb']:>6} MB")
        if r["error"]:
            print(f"  {r['variant']}: {r['error']}")
    before, off, now = rows["before"], rows["reuse_off"], rows["now"]
    speedup = before["wall_s"] / now["wall_s"]
    evaluated = (now["tokens_evaluated"] or 0) / max(1, now["tokens_in"] or 0)
    print(f"wall time, before / now: {speedup:.2f}x (target >= {SPEEDUP_TARGET}x) "
          f"{'PASS' if speedup >= SPEEDUP_TARGET else 'FAIL'}; kept prompt states alone (reuse_off / now): "
          f"{off['wall_s'] / now['wall_s']:.2f}x")
    print(f"prompt tokens evaluated now: {evaluated:.0%} of those sent")
    print(f"peak RSS now: {now['peak_rss_mb']} MB (target <= {RSS_TARGET_MB} MB) "
          f"{'PASS' if now['peak_rss_mb'] <= RSS_TARGET_MB else 'FAIL'}")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "speedup": round(speedup, 3)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
