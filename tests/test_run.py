"""A FORWARD run end to end on the test model: store tables, totals, outputs, cache and determinism."""

from __future__ import annotations

import json
import sqlite3

import pytest

TABLES = ["runs", "entities", "timepoints", "dialogs", "causal_edges", "exposure_events", "llm_calls"]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One run of the default template on model=test, shared by the read-only checks below."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from conftest import RunResult
    tmp = tmp_path_factory.mktemp("forward")
    run_dir = tmp / "run"
    proc = subprocess.run([sys.executable, "-m", "timepoint", "model=test", "template=board_meeting",
                           f"hydra.run.dir={run_dir}"], capture_output=True, text=True, cwd=tmp,
                          env={**os.environ, "TIMEPOINT_HOME": str(tmp / "home")}, timeout=120)
    return RunResult(proc.returncode, proc.stdout, proc.stderr, Path(run_dir))


def test_run_completes_and_leaves_its_directory(first_run):
    assert first_run.code == 0, first_run.stderr
    names = {p.name for p in first_run.run_dir.iterdir()}
    assert {".hydra", "run.db", "training.jsonl", "run.json"} <= names
    assert {"config.yaml", "hydra.yaml", "overrides.yaml"} <= {p.name for p in (first_run.run_dir / ".hydra").iterdir()}
    s = first_run.summary
    assert s["status"] == "completed" and s["template"] == "board_meeting" and s["mode"] == "forward"
    assert s["counts"]["entities"] == 5 and s["counts"]["timepoints"] == 3
    assert s["counts"]["training_examples"] == sum(1 for _ in (first_run.run_dir / "training.jsonl").open())
    assert f"Run {s['id']}: completed" in first_run.stdout


def test_store_has_every_table_filled(first_run):
    db = sqlite3.connect(first_run.run_dir / "run.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for table in TABLES:
        assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] > 0, table


def test_run_totals_equal_the_sum_of_its_calls(first_run):
    db = sqlite3.connect(first_run.run_dir / "run.db")
    calls, cached, tin, tout, cost = db.execute(
        "SELECT COUNT(*), SUM(cached), SUM(tokens_in), SUM(tokens_out), SUM(cost_usd) FROM llm_calls").fetchone()
    run = db.execute("SELECT llm_calls, cached_calls, tokens_in, tokens_out, cost_usd FROM runs").fetchone()
    assert run == (calls, cached, tin, tout, cost)
    s = first_run.summary
    assert (s["calls"]["total"], s["tokens"]["in"], s["tokens"]["out"]) == (calls, tin, tout)
    roles = {r[0] for r in db.execute("SELECT DISTINCT role FROM llm_calls")}
    assert {"dialog", "extraction", "steering"} <= roles


def test_timepoints_form_a_causal_chain(first_run):
    db = sqlite3.connect(first_run.run_dir / "run.db")
    tps = db.execute("SELECT timepoint_id, causal_parent, timestamp FROM timepoints ORDER BY idx").fetchall()
    assert tps[0][1] is None
    for (prev_id, _, prev_ts), (_, parent, ts) in zip(tps, tps[1:]):
        assert parent == prev_id and ts > prev_ts
    edges = db.execute("SELECT source, target FROM causal_edges ORDER BY target").fetchall()
    assert edges == [(p, c) for (p, _, _), (c, _, _) in zip(tps, tps[1:])]


def test_knowledge_has_provenance(first_run):
    db = sqlite3.connect(first_run.run_dir / "run.db")
    kinds = dict(db.execute("SELECT event_type, COUNT(*) FROM exposure_events GROUP BY 1").fetchall())
    assert {"initial", "experienced", "told"} <= set(kinds)
    speakers = {r[0] for r in db.execute("SELECT entity_id FROM entities")}
    for entity, source in db.execute("SELECT entity_id, source FROM exposure_events WHERE event_type = 'told'"):
        assert source in speakers and source != entity


def test_training_records_carry_the_real_before_state(first_run):
    db = sqlite3.connect(first_run.run_dir / "run.db")
    records = [json.loads(line) for line in (first_run.run_dir / "training.jsonl").open()]
    assert records
    for rec in records:
        completion = json.loads(rec["completion"])
        t0, t1 = completion["metadata"]["timepoint_transition"].split(" -> ")
        entity = completion["metadata"]["entity_id"]
        before, after = (json.loads(db.execute(
            "SELECT cognitive FROM entity_states WHERE entity_id = ? AND timepoint_id = ?", (entity, tp)).fetchone()[0])
            for tp in (t0, t1))
        assert f"Energy: {before['energy']:.1f}" in rec["prompt"]
        assert f"Valence: {before['valence']:.2f}" in rec["prompt"]
        assert completion["energy_change"] == pytest.approx(after["energy"] - before["energy"], abs=1e-3)
        assert completion["emotional_change"]["final_arousal"] == pytest.approx(after["arousal"], abs=1e-3)
        for section in ("CAUSAL HISTORY (M7)", "RELATIONSHIP CONTEXT (M13)", "KNOWLEDGE PROVENANCE (M3)",
                        "ENTITY STATE (M6)", "ENTITY BEFORE EVENT (T0)", "EVENT OCCURRING NOW"):
            assert f"=== {section} ===" in rec["prompt"]
        assert rec["metadata"]["model"] == "test" and rec["metadata"]["training_safe"] is True


def test_the_catalog_lists_the_run(first_run):
    db = sqlite3.connect(first_run.run_dir.parent / "home" / "catalog.db")
    rows = db.execute("SELECT run_id, status, cost_usd, created_at FROM runs").fetchall()
    assert [(r[0], r[1]) for r in rows] == [(first_run.summary["id"], "completed")]


def test_rerun_is_served_from_cache_with_identical_training_data(timepoint):
    first = timepoint("model=test")
    second = timepoint("model=test")
    assert first.code == second.code == 0
    assert first.summary["calls"]["cached"] == 0
    assert second.summary["calls"]["cached"] == second.summary["calls"]["total"] == first.summary["calls"]["total"]
    assert first.training_records() == second.training_records()


def test_same_config_gives_identical_training_data_without_cache(timepoint):
    runs = [timepoint("model=test", "cache.mode=off", "template=jefferson_dinner") for _ in range(2)]
    assert all(r.code == 0 for r in runs)
    assert runs[0].summary["calls"]["cached"] == 0 == runs[1].summary["calls"]["cached"]
    assert runs[0].training_records() == runs[1].training_records()


def test_another_seed_gives_other_data(timepoint):
    a, b = timepoint("model=test", "seed=1"), timepoint("model=test", "seed=2")
    assert (a.run_dir / "training.jsonl").read_bytes() != (b.run_dir / "training.jsonl").read_bytes()


def test_hard_budget_stops_cleanly_and_keeps_its_work(timepoint):
    result = timepoint("model=test", "budget=hard", "budget.max_calls=5")
    assert result.code == 3, result.stderr
    s = result.summary
    assert s["status"] == "budget_exhausted" and "budget.max_calls=5" in s["error"]
    assert s["calls"]["total"] == 5
    assert (result.run_dir / "training.jsonl").exists()


def test_export_rebuilds_training_data_from_the_store(first_run, tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    out = tmp_path / "again"
    console_script = Path(sys.executable).with_name("timepoint")
    proc = subprocess.run([str(console_script), "export", str(first_run.run_dir), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (out / "training.jsonl").read_bytes() == (first_run.run_dir / "training.jsonl").read_bytes()


def test_multirun_makes_one_run_per_combination(timepoint, tmp_path):
    sweep = tmp_path / "sweep"
    result = timepoint("-m", "model=test", "template=convergence_simple,board_meeting", f"hydra.sweep.dir={sweep}")
    assert result.code == 0, result.stderr
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1"]
    templates = [json.loads((p / "run.json").read_text())["template"] for p in jobs]
    assert templates == ["convergence_simple", "board_meeting"]
    assert (sweep / "multirun.yaml").exists()
