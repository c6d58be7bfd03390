"""`timepoint audit` fails on records that do not tell the truth: one hand-made lie each."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def audit(run_dir: Path, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "timepoint.cli", "audit", str(run_dir)], capture_output=True,
                          text=True, env={**os.environ, "TIMEPOINT_HOME": str(home)}, timeout=300)


@pytest.fixture
def copy(finished_run, tmp_path):
    """A copy of a finished board_meeting run on the test model, to tamper with."""
    target = tmp_path / "run"
    shutil.copytree(finished_run.run_dir, target)
    return target


def rewrite(path: Path, change) -> None:
    records = [json.loads(line) for line in path.open()]
    change(records)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def test_the_untouched_run_passes(copy, tmp_path):
    result = audit(copy, tmp_path)
    assert result.returncode == 0 and "no violations" in result.stdout, result.stdout


def test_a_trust_from_after_t0_is_caught(copy, tmp_path):
    def future_trust(records):
        r = next(r for r in records if "(trust: " in r["prompt"])
        head, tail = r["prompt"].split("(trust: ", 1)
        r["prompt"] = f"{head}(trust: {(float(tail[:4]) + 0.37) % 1:.2f}{tail[4:]}"   # not what the pair had then
    rewrite(copy / "training.jsonl", future_trust)
    result = audit(copy, tmp_path)
    assert result.returncode == 1
    assert "future_value" in result.stdout and "trust with" in result.stdout


def test_a_knowledge_item_the_entity_was_never_exposed_to_is_caught(copy, tmp_path):
    db = sqlite3.connect(copy / "run.db")
    # someone else's secret: an initial item of one entity that another never learns
    secret, owner = next((info, eid) for info, eid in db.execute(
        "SELECT information, entity_id FROM exposure_events WHERE event_type = 'initial'")
        if db.execute("SELECT COUNT(*) FROM exposure_events WHERE information = ?", (info,)).fetchone()[0] == 1)

    def leak(records):
        r = next(r for r in records if r["metadata"]["entity_id"] != owner)
        r["prompt"] = r["prompt"].replace("=== KNOWLEDGE PROVENANCE (M3) ===\n",
                                          f"=== KNOWLEDGE PROVENANCE (M3) ===\n  \"{secret}\" (told)\n", 1)
    rewrite(copy / "training.jsonl", leak)
    result = audit(copy, tmp_path)
    assert result.returncode == 1
    assert "unexposed_knowledge" in result.stdout and secret[:40] in result.stdout


def test_a_state_field_that_never_moves_is_caught(copy, tmp_path):
    db = sqlite3.connect(copy / "run.db")
    speaker = db.execute("SELECT speaker FROM turns LIMIT 1").fetchone()[0]
    with db:
        db.execute("UPDATE entity_states SET cognitive = json_set(cognitive, '$.energy', 50.0) WHERE entity_id = ?",
                   (speaker,))
    result = audit(copy, tmp_path)
    assert result.returncode == 1
    assert "constant_field [" in result.stdout and f"energy stays 50.0 though {speaker} spoke" in result.stdout


def test_a_record_that_breaks_its_schema_is_caught(copy, tmp_path):
    rewrite(copy / "chat.jsonl", lambda records: records[0].pop("messages"))
    result = audit(copy, tmp_path)
    assert result.returncode == 1 and "schema [" in result.stdout
    assert "'messages' is a required property" in result.stdout


def test_a_degenerate_answer_is_caught(copy, tmp_path):
    def label(records):
        records[3]["messages"][-1]["content"] = "Evelyn Cho says:"
    rewrite(copy / "chat.jsonl", label)
    result = audit(copy, tmp_path)
    assert result.returncode == 1 and "degenerate [" in result.stdout and "label" in result.stdout
