"""`timepoint query`: an entity of a finished run answers in character, and asking elevates it
as M5 (and M2) say, with the new knowledge recorded as exposures."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from timepoint.errors import UserError
from timepoint.mechanisms import elevation
from timepoint.query import ask
from timepoint.store import RunStore


@pytest.fixture
def run_copy(finished_run, tmp_path):
    """A copy of the finished run, so queries do not change the shared one."""
    shutil.copy(finished_run.run_dir / "run.db", tmp_path / "run.db")
    return tmp_path


def test_asking_answers_and_elevates_with_recorded_knowledge(run_copy):
    before = {e["entity_id"]: e for e in RunStore(run_copy / "run.db").rows("entities")}["marcus_feld"]
    reply = asyncio.run(ask(run_copy, "marcus_feld", "What do you know about Harborline's revenue?"))
    assert reply["answer"] and reply["resolution_before"] == before["resolution"]
    assert elevation.rank(reply["resolution_after"]) >= elevation.rank(elevation.REQUIRED[reply["intent"]])
    store = RunStore(run_copy / "run.db")
    after = {e["entity_id"]: e for e in store.rows("entities")}["marcus_feld"]
    assert after["query_count"] == 1 and after["resolution"] == reply["resolution_after"]
    learned = [e["information"] for e in store.rows("exposure_events") if e["source"] == "elevation"]
    assert learned == reply["new_knowledge"]
    assert [(q["entity_id"], q["answer"]) for q in store.rows("queries")] == [("marcus_feld", reply["answer"])]
    assert {"M5"} <= {m["mechanism"] for m in store.rows("mechanism_usage") if m["hook"] in ("query", "elevation")}
    assert store.rows("llm_calls")[-1]["role"] == "dialog"          # the answer is on the run's ledger


def test_an_unknown_entity_is_named_with_the_cast(run_copy):
    with pytest.raises(UserError, match="no entity 'nobody' in this run; entities are evelyn_cho, marcus_feld"):
        asyncio.run(ask(run_copy, "nobody", "Hello?"))


def test_without_m5_a_question_elevates_nobody(timepoint, tmp_path):
    result = timepoint("model=test", "mechanisms=minimal")
    assert result.code == 0, result.stderr
    entity = result.store().rows("entities")[0]
    reply = asyncio.run(ask(result.run_dir, entity["entity_id"], "How do you spend your evenings?"))
    assert reply["resolution_after"] == reply["resolution_before"] == entity["resolution"]
    assert reply["new_knowledge"] == []


@pytest.mark.parametrize("level, intent, retrain, expected", [
    ("tensor_only", "general", False, "scene"),
    ("scene", "knowledge", False, "graph"),
    ("graph", "actions", False, "dialog"),
    ("dialog", "dialog", False, "trained"),
    ("trained", "general", False, "trained"),          # never lowered
    ("scene", "general", True, "graph"),               # M2: one level up
    ("full_detail", "general", True, "full_detail"),   # nothing above
])
def test_target_level(level, intent, retrain, expected):
    assert elevation.target_level(level, intent, retrain) == expected


def test_retraining_thresholds():
    assert elevation.needs_retraining(0.31, 2, 0, "dialog")
    assert not elevation.needs_retraining(0.3, 2, 0, "dialog")       # strictly above .3
    assert not elevation.needs_retraining(0.9, 3, 0, "dialog")       # trained three times already
    assert not elevation.needs_retraining(0.0, 0, 25, "dialog") and elevation.needs_retraining(0.0, 0, 26, "dialog")
    assert elevation.kept_items(["too short", "a fact long enough to keep"] * 5, "scene") == \
        ["a fact long enough to keep"] * 3
