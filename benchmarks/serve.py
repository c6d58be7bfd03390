"""`timepoint serve` over a catalog of 1,000 model=test runs: median response time of the run list
(`GET /api/runs?per_page=50`) and of one run page (`GET /runs/{id}`), against the targets of issue 15
(100 ms and 500 ms on a 2-core machine).

    python benchmarks/serve.py [--runs 1000] [--requests 30] [--out serve.json] [--keep DIR]

How the catalog is built (said again in the output): a few real model=test runs (one per template in
--templates), each run as a user runs it, then copies of their run directories until the catalog holds
--runs runs. A copy gets a new run id rewritten in every table of its run.db and its own catalog row;
its other files are hard links to the original's (they still name the original run id, and neither
measured request reads them). The server is started as a user starts it, on a free port of 127.0.0.1,
and measured over HTTP with httpx, one request at a time.

The server keeps the last 32 run pages it built (a page is the same until the run's store changes), so
the run page is measured twice: one run requested --requests times after one warm-up (what a reader
coming back to a page gets), and --requests different runs requested once each, each page built anew.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from timepoint.engine import new_run_id
from timepoint.store import TABLES, Catalog

LIST = "run list (GET /api/runs?per_page=50)"
PAGE = "run page (GET /runs/{id}), same run again"
PAGE_NEW = "run page (GET /runs/{id}), each run new"
TARGETS_MS = {LIST: 100, PAGE: 500, PAGE_NEW: 500}


def real_run(template: str, root: Path, home: Path) -> Path:
    run_dir = root / f"real_{template}"
    subprocess.run([sys.executable, "-m", "timepoint", "model=test", f"template={template}",
                    f"hydra.run.dir={run_dir}"], check=True, capture_output=True, cwd=root,
                   env={**os.environ, "TIMEPOINT_HOME": str(home)})
    return run_dir


def replicate(original: dict, copy_dir: Path, run_id: str, created_at: str, catalog: Catalog) -> None:
    """A copy of a cataloged run under a new id: run.db copied and its run id rewritten, the rest hard-linked."""
    source = Path(original["run_dir"])
    copy_dir.mkdir(parents=True)
    for f in source.iterdir():
        if f.is_file() and f.name != "run.db" and not f.name.startswith("run.db-"):
            os.link(f, copy_dir / f.name)
    shutil.copyfile(source / "run.db", copy_dir / "run.db")
    db = sqlite3.connect(copy_dir / "run.db")
    with db:
        for table in TABLES:
            db.execute(f"UPDATE {table} SET run_id = ?", (run_id,))
        db.execute("UPDATE runs SET created_at = ?", (created_at,))
    db.close()
    catalog.upsert(**{**original, "run_id": run_id, "run_dir": str(copy_dir.resolve()), "created_at": created_at})


def build(root: Path, runs: int, templates: list[str]) -> tuple[Path, dict]:
    home = root / "home"
    for template in templates:
        real_run(template, root, home)
    catalog = Catalog(home / "catalog.db")
    originals = catalog.runs()
    assert all(r["status"] == "completed" for r in originals), originals
    start = datetime.now(timezone.utc) - timedelta(days=30)
    for i in range(runs - len(originals)):
        original = originals[i % len(originals)]
        run_id = new_run_id()[:-8] + f"{i:08x}"  # unique even within one second
        created = (start + timedelta(minutes=i)).isoformat(timespec="seconds")
        replicate(original, root / "copies" / run_id, run_id, created, catalog)
    total = len(catalog.runs())
    catalog.close()
    return home, {"real_runs": [r["template"] for r in originals], "copies": total - len(originals), "total": total}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(client: httpx.Client, paths: list[str]) -> list[float]:
    out = []
    for path in paths:
        started = time.perf_counter()
        client.get(path).raise_for_status()
        out.append((time.perf_counter() - started) * 1000)
    return out


def measure(home: Path, page_runs: list[str], requests: int) -> dict:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "timepoint.cli", "serve", "--port", str(port),
                               "--home", str(home)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for _ in range(300):
                try:
                    client.get("/api/runs?per_page=1")
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            client.get("/api/runs?per_page=50").raise_for_status()  # warm-up
            client.get(f"/runs/{page_runs[0]}").raise_for_status()
            return {LIST: timed(client, ["/api/runs?per_page=50"] * requests),
                    PAGE: timed(client, [f"/runs/{page_runs[0]}"] * requests),
                    PAGE_NEW: timed(client, [f"/runs/{run_id}" for run_id in page_runs[1:requests + 1]])}
    finally:
        server.kill()
        server.communicate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--templates", nargs="+", default=["mars_mission_portal", "castaway_colony_branching",
                                                           "board_meeting"])
    parser.add_argument("--out", help="also write the figures as JSON here")
    parser.add_argument("--keep", help="build the catalog in this directory and keep it (default: a temporary one)")
    args = parser.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="timepoint_serve_bench_"))
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        sys.exit(f"{root} is not empty: give --keep a new directory")
    try:
        started = time.perf_counter()
        home, built = build(root, args.runs, args.templates)
        print(f"catalog: {built['total']} runs = {len(built['real_runs'])} real model=test runs "
              f"({', '.join(built['real_runs'])}) + {built['copies']} copies of them (new run ids rewritten in "
              f"run.db and the catalog; other files hard-linked), built in {time.perf_counter() - started:.0f} s")
        with sqlite3.connect(home / "catalog.db") as db:
            page_runs = [r[0] for r in db.execute("SELECT run_id FROM runs WHERE template = ? ORDER BY created_at "
                                                  "DESC LIMIT ?", (args.templates[0], args.requests + 1))]
        print(f"run pages measured: {args.templates[0]} runs; {args.requests} requests each, one at a time, "
              f"on {os.cpu_count()} cores")
        times = measure(home, page_runs, args.requests)
        report = {"catalog": built, "template": args.templates[0], "requests": args.requests, "results": {}}
        for name, ms in times.items():
            median, target = statistics.median(ms), TARGETS_MS[name]
            verdict = "PASS" if median < target else "FAIL"
            report["results"][name] = {"median_ms": round(median, 1), "min_ms": round(min(ms), 1),
                                       "max_ms": round(max(ms), 1), "target_ms": target, "pass": median < target}
            print(f"{name:<46} median {median:7.1f} ms  (min {min(ms):.1f}, max {max(ms):.1f})  target < {target} ms  "
                  f"{verdict}")
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        if not all(r["pass"] for r in report["results"].values()):
            sys.exit(1)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
