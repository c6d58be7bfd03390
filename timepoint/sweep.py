"""The sweep summary: when a Hydra multirun ends, one row per job at the sweep root — its
overrides, status, cost and records — so a sweep is judged at a glance and collected after.

Registered as a Hydra callback in conf/config.yaml; it reads only what each job left on disk,
so it works the same under the basic, joblib and submitit launchers.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)

COLUMNS = ("job", "overrides", "status", "run_id", "template", "mode", "model", "calls", "cost_usd",
           "training_examples", "run_dir")


def job_row(job_dir: Path) -> dict:
    """A job that left no run.json failed before its run began (a config mistake): say so."""
    overrides_file = job_dir / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
    row = dict.fromkeys(COLUMNS)
    row.update(job=job_dir.name, overrides=" ".join(overrides), status="not started", run_dir=str(job_dir))
    summary_file = job_dir / "run.json"
    if summary_file.exists():
        s = json.loads(summary_file.read_text())
        row.update(status=s["status"], run_id=s["id"], template=s["template"], mode=s["mode"], model=s["model"],
                   calls=s["calls"]["total"], cost_usd=s["cost_usd"],
                   training_examples=s["counts"]["training_examples"])
    return row


def summarise(sweep_dir: Path) -> list[dict]:
    """Rows for every job directory of a sweep, in job order; written as CSV and JSON at its root."""
    jobs = sorted((d for d in sweep_dir.iterdir() if d.is_dir() and d.name.isdigit()), key=lambda d: int(d.name))
    rows = [job_row(d) for d in jobs]
    (sweep_dir / "sweep_summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    with (sweep_dir / "sweep_summary.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return rows


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            rows = summarise(sweep_dir)
            done = sum(r["status"] == "completed" for r in rows)
            cost = sum(r["cost_usd"] or 0 for r in rows)
            log.info("sweep: %d of %d jobs completed, $%.4f; summary in %s", done, len(rows), cost,
                     sweep_dir / "sweep_summary.csv")
