"""A Hydra multirun: every job a run directory, and a summary of them all at the sweep root."""

from __future__ import annotations

import csv
import json

import pytest


def test_a_2x2_sweep_makes_four_runs_and_a_summary(timepoint, tmp_path):
    sweep = tmp_path / "sweep"
    result = timepoint("-m", "model=test", "seed=1,2", "template=convergence_simple,board_meeting",
                       f"hydra.sweep.dir={sweep}")
    assert result.code == 0, result.stderr
    rows = json.loads((sweep / "sweep_summary.json").read_text())
    assert [r["job"] for r in rows] == ["0", "1", "2", "3"]
    assert {(r["template"], r["overrides"].split()[1]) for r in rows} == {
        (t, f"seed={s}") for t in ("convergence_simple", "board_meeting") for s in (1, 2)}
    for r in rows:
        run = json.loads((sweep / r["job"] / "run.json").read_text())
        assert r["status"] == run["status"] == "completed" and r["run_id"] == run["id"]
        assert r["training_examples"] == run["counts"]["training_examples"] > 0
    with (sweep / "sweep_summary.csv").open() as f:
        assert [row["run_id"] for row in csv.DictReader(f)] == [r["run_id"] for r in rows]


@pytest.mark.parametrize("launcher", [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
                                      ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"]])
def test_sweeps_run_under_the_joblib_and_submitit_launchers(timepoint, tmp_path, launcher):
    sweep = tmp_path / "sweep"
    result = timepoint("-m", "model=test", "seed=1,2", *launcher, f"hydra.sweep.dir={sweep}")
    assert result.code == 0, result.stderr
    rows = json.loads((sweep / "sweep_summary.json").read_text())
    assert [r["status"] for r in rows] == ["completed", "completed"]
    assert len({r["run_id"] for r in rows}) == 2
