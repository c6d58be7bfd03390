"""Convergence and diff: real runs on the deterministic test model, and tiny hand-built stores for exact values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from timepoint.convergence import convergence, grade, normalise
from timepoint.convergence import render as render_convergence
from timepoint.diff import diff
from timepoint.diff import render as render_diff
from timepoint.errors import UserError
from timepoint.store import RunStore
from timepoint.world import ExposureEvent, Timepoint

WHEN = datetime(2030, 1, 1)
RUNS = {"first": ("template=convergence_simple", "seed=1"), "again": ("template=convergence_simple", "seed=1"),
        "seed2": ("template=convergence_simple", "seed=2"), "jefferson": ("template=jefferson_dinner",)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Real runs on the test model without a cache, started together to keep the tests fast."""
    from conftest import RunResult
    tmp = tmp_path_factory.mktemp("convergence")
    procs = {name: subprocess.Popen([sys.executable, "-m", "timepoint", "model=test", "cache.mode=off", *overrides,
                                     f"hydra.run.dir={tmp / name}"], cwd=tmp, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env={**os.environ, "TIMEPOINT_HOME": str(tmp / f"home_{name}")})
             for name, overrides in RUNS.items()}
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{name}: {err}"
        results[name] = RunResult(proc.returncode, out, err, tmp / name)
    return results


def build_run(run_dir: Path, events: list[str], exposures: list[tuple[str, str, str]], config: dict) -> Path:
    """A run store holding a main-timeline chain of `events` and (entity, event type, information) exposures."""
    store = RunStore(run_dir / "run.db", run_id=run_dir.name)
    store.begin_run(template="synthetic", mode="forward", config_json=json.dumps(config))
    for i, event in enumerate(events):
        store.save_timepoint(Timepoint(id=f"tp_{i:03d}", index=i, timestamp=WHEN, event=event, entities_present=[],
                                       causal_parent=f"tp_{i - 1:03d}" if i else None))
    store.add_exposures([ExposureEvent(entity_id=eid, event_type=kind, information=info, source="s", timestamp=WHEN,
                                       timepoint_id="tp_000") for eid, kind, info in exposures])
    store.close()
    return run_dir


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """Two runs that share their opening, part at timepoint 2, and agree on one of three knowledge items."""
    a = build_run(tmp_path / "a", ["The board meets.", "Nadia pitches.", "The deal is approved."],
                  [("nadia", "told", "The  Price is $24M"), ("sam", "told", "engineers will quit"),
                   ("sam", "initial", "only in a")],
                  {"seed": 1, "model": {"name": "test", "temperature": 0.7}, "extra": True})
    b = build_run(tmp_path / "b", ["The board meets.", "Nadia pitches.", "The deal is rejected."],
                  [("nadia", "told", "the price is $24m"), ("walter", "told", "engineers will quit"),
                   ("sam", "initial", "only in b")],
                  {"seed": 2, "model": {"name": "test", "temperature": 0.2}})
    return a, b


def test_grades_and_normalisation_follow_the_reference():
    assert [grade(s) for s in (1.0, 0.9, 0.89, 0.8, 0.7, 0.5, 0.49, 0.0)] == ["A", "A", "B", "B", "C", "D", "F", "F"]
    assert normalise("  Hello\n  WORLD ") == "hello world"
    assert len(normalise("x" * 200)) == 80


def test_partial_agreement_is_scored_exactly(pair):
    result = convergence(list(pair))
    assert result["causal"]["mean"] == pytest.approx(1 / 3)  # (meets, pitches) shared; the last edges differ
    assert result["knowledge"]["mean"] == pytest.approx(1 / 3)  # case and spacing ignored; initial items left out
    assert result["score"] == pytest.approx(1 / 3) and result["grade"] == "F"
    assert result["outcome_similarity"]["mean"] == pytest.approx(3 / 5)  # {the, deal, is} of five words
    assert result["consensus"]["causal"] == [{"source": "the board meets.", "target": "nadia pitches."}]
    assert result["consensus"]["knowledge"] == [{"entity_id": "nadia", "information": "the price is $24m"}]
    assert {e["entity_id"] for e in result["contested"]["knowledge"]} == {"sam", "walter"}
    assert all(e["agreement"] == 0.5 for e in result["contested"]["causal"] + result["contested"]["knowledge"])
    assert result["divergence"] == {"index": 2, "events": {"a": "the deal is approved.", "b": "the deal is rejected."}}


def test_diff_falls_back_to_the_stored_config(pair):
    result = diff(*pair)
    assert result["config_source"] == "runs.config_json"
    assert result["config"] == {"changed": {"seed": {"a": 1, "b": 2}, "model.temperature": {"a": 0.7, "b": 0.2}},
                                "only_a": {"extra": True}, "only_b": {}}
    assert result["outcome"]["timepoints"] == {"a": 3, "b": 3}
    assert "model.temperature" in render_diff(result) and "(absent)" in render_diff(result)


def test_bad_input_is_a_user_error(tmp_path: Path, pair):
    with pytest.raises(UserError, match="at least two"):
        convergence([pair[0]])
    with pytest.raises(UserError, match="no run.db"):
        convergence([pair[0], tmp_path / "missing"])
    assert not (tmp_path / "missing").exists()


def test_identical_runs_converge_fully(runs):
    result = convergence([runs["first"].run_dir, runs["again"].run_dir])
    assert (result["score"], result["grade"]) == (1.0, "A")
    assert result["causal"]["min"] == result["knowledge"]["min"] == result["outcome_similarity"]["min"] == 1.0
    assert result["consensus"]["causal"] and result["consensus"]["knowledge"]
    assert result["contested"] == {"causal": [], "knowledge": []} and result["divergence"] is None
    assert "grade A" in render_convergence(result)


def test_different_templates_share_nothing(runs, finished_run):
    result = convergence([finished_run.run_dir, runs["jefferson"].run_dir])  # reads board_meeting, writes nothing
    assert result["templates"] == ["board_meeting", "jefferson_dinner"]
    assert result["knowledge"]["mean"] == 0.0  # no entity in common
    assert result["causal"]["mean"] < 0.1 and result["grade"] == "F"
    assert result["divergence"]["index"] == 0
    text = render_convergence(result)
    assert "grade F" in text and "different templates" in text


def test_diff_of_two_seeds(runs):
    a, b = runs["first"], runs["seed2"]
    result = diff(a.run_dir, b.run_dir)
    assert result["config_source"] == ".hydra/config.yaml"
    assert result["config"] == {"changed": {"seed": {"a": 1, "b": 2}}, "only_a": {}, "only_b": {}}
    outcome = result["outcome"]
    assert outcome["seed"] == {"a": 1, "b": 2} and outcome["status"] == {"a": "completed", "b": "completed"}
    for run, side in ((a, "a"), (b, "b")):
        store = run.store()
        assert {k: outcome[k][side] for k in store.counts()} == store.counts()
        store.close()
    assert 0.0 <= result["convergence"]["score"] <= 1.0 and result["convergence"]["grade"] in "ABCDF"
    text = render_diff(result)
    assert "seed" in text and f"grade {result['convergence']['grade']}" in text
    assert all(row in text for row in ("exposure_events", "timelines", a.summary["id"], b.summary["id"]))


def test_the_commands_print_and_save(finished_run, tmp_path, monkeypatch, capsys):
    import sys

    from timepoint.cli import main
    out = tmp_path / "convergence.json"
    run = str(finished_run.run_dir)
    monkeypatch.setattr(sys, "argv", ["timepoint", "convergence", run, run, "--out", str(out)])
    main()
    assert "grade A" in capsys.readouterr().out
    assert json.loads(out.read_text())["score"] == 1.0
    monkeypatch.setattr(sys, "argv", ["timepoint", "diff", run, run])
    main()
    assert "Config differences" in capsys.readouterr().out
