"""The LangGraph dialog engine on the test model: shape, termination, per-character parameters,
knowledge visibility along causal ancestry, and what a dialog leaves behind."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from conftest import new_simulation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from timepoint.dialog.context import fourth_wall
from timepoint.dialog.effects import aftermath_schema, update_arcs
from timepoint.dialog.graph import DialogEngine, run_dialog
from timepoint.dialog.persona import persona_params
from timepoint.llm.providers.test import TestProvider
from timepoint.llm.request import Completion
from timepoint.world import ExposureEvent, Timepoint


class Recording(TestProvider):
    """The test model, keeping every request it is sent; steering can be scripted."""

    def __init__(self, card, steer=None):
        super().__init__(card)
        self.requests, self.steer = [], steer

    async def complete(self, request):
        self.requests.append(request)
        if self.steer and request.json_schema.get("title") == "SteeringDecision":
            participants = request.json_schema["properties"]["next_speaker"]["enum"]
            return Completion(json.dumps(self.steer(participants, len(self.requests))), 10, 10)
        return await super().complete(request)


def opening(sim) -> Timepoint:
    tp = Timepoint(id="tp_000", index=0, timestamp=sim.time_of(0), event=sim.opening_event,
                   entities_present=list(sim.entities))
    sim.add_timepoint(tp)
    return tp


def dialog_with(tmp_path, steer=None, *overrides):
    async def go():
        from timepoint.config import ModelCard  # noqa: F401  (card comes from the run)
        sim = await new_simulation(tmp_path, *overrides)
        provider = Recording(sim.gateway._models["test"].card, steer)
        sim.gateway._models["test"].provider = provider
        tp = opening(sim)
        engine = DialogEngine(sim, tp, list(sim.entities))
        return sim, engine, await engine.run(), provider
    return asyncio.run(go())


def test_graph_has_the_steering_character_gate_loop(tmp_path):
    _, engine, _, _ = dialog_with(tmp_path)
    g = engine.graph.get_graph()
    edges = {(e.source, e.target) for e in g.edges}
    assert set(g.nodes) == {"__start__", "steering", "character", "quality_gate", "__end__"}
    assert edges == {("__start__", "steering"), ("steering", "character"), ("steering", "quality_gate"),
                     ("character", "quality_gate"), ("quality_gate", "steering"), ("quality_gate", "character"),
                     ("quality_gate", "__end__")}


def never_ending(participants, n):
    return {"next_speaker": participants[n % len(participants)], "dialog_move": "direct_statement",
            "move_target": "everyone", "move_rationale": "go on", "mood_shift": "escalate",
            "suppress_speaker": [], "end_dialog": False}


def test_a_steering_that_never_ends_stops_at_max_turns(tmp_path):
    sim, engine, dialog, _ = dialog_with(tmp_path, never_ending, "dialog.max_turns=7", "dialog.min_turns=4")
    assert len(dialog.turns) == engine.structure.max_turns == 7
    assert dialog.mood == "escalating"
    assert all(a.speaker != b.speaker for a, b in zip(dialog.turns, dialog.turns[1:]))


def test_a_steering_that_only_wants_silence_still_terminates(tmp_path):
    def silent(participants, n):
        return {**never_ending(participants, n), "dialog_move": "silence"}
    sim, engine, dialog, _ = dialog_with(tmp_path, silent, "dialog.max_turns=6", "dialog.min_turns=4")
    assert engine.structure.min_turns <= len(dialog.turns) <= engine.structure.max_turns
    assert any("silence" in s for e in sim.entities.values() for s in e.mind.suppressed)


def test_ending_early_is_refused_before_the_minimum(tmp_path):
    def eager(participants, n):
        return {**never_ending(participants, n), "end_dialog": True}
    _, engine, dialog, _ = dialog_with(tmp_path, eager, "dialog.max_turns=9", "dialog.min_turns=4")
    assert len(dialog.turns) == engine.structure.min_turns


def test_each_character_call_carries_its_own_persona_parameters(tmp_path):
    sim, engine, dialog, provider = dialog_with(tmp_path, never_ending, "dialog.max_turns=6", "dialog.min_turns=6",
                                                "template=board_meeting")
    calls = [r for r in provider.requests if r.json_schema.get("title") == "TurnDraft"]
    assert len(calls) == len(dialog.turns) == 6
    sampling = set()
    for request, turn in zip(calls, dialog.turns):
        speaker = sim.entities[turn.speaker]
        assert request.messages[0]["content"].startswith(f"You are {speaker.name}")
        expected = persona_params(speaker.cognitive.arousal, speaker.cognitive.energy, speaker.tensor.behavior,
                                  turn.index, engine.structure.max_turns)
        assert (request.temperature, request.top_p) == (expected.temperature, expected.top_p)
        assert (request.frequency_penalty, request.presence_penalty) == \
            (expected.frequency_penalty, expected.presence_penalty)
        assert request.max_tokens == expected.max_tokens + 64
        assert turn.params == expected.as_dict()
        sampling.add((request.temperature, request.frequency_penalty, request.presence_penalty))
    assert len(sampling) > 1, "different characters should sample differently"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_character_sees_knowledge_from_outside_its_causal_ancestry(tmp_path, data):
    """Random timelines (each timepoint hangs off any earlier one, as PORTAL and BRANCHING produce)
    with knowledge at random timepoints: the front layer only ever shows ancestral or prior items."""
    async def go(folder):
        sim = await new_simulation(Path(folder))
        ids = list(sim.entities)
        n = data.draw(st.integers(2, 8))
        start = sim.time_of(0)
        for i in range(n):
            parent = f"tp_{data.draw(st.integers(0, i - 1)):03d}" if i else None
            sim.timepoints.append(Timepoint(id=f"tp_{i:03d}", index=i, timestamp=start + timedelta(hours=i),
                                            event=f"event {i}", entities_present=ids, causal_parent=parent))
        for k in range(data.draw(st.integers(1, 25))):
            where = data.draw(st.integers(0, n - 1))
            who = data.draw(st.sampled_from(ids))
            sim.exposures.setdefault(who, []).append(ExposureEvent(
                entity_id=who, event_type="told", information=f"fact {k} from tp_{where:03d}", source="x",
                timestamp=datetime(2030, 1, 1) - timedelta(days=k), confidence=0.9, timepoint_id=f"tp_{where:03d}"))
        current = sim.timepoints[data.draw(st.integers(0, n - 1))]
        allowed = sim.ancestry(current)
        for eid in ids:
            wall = fourth_wall(sim, sim.entities[eid], current, ids)
            for item in wall.knowledge:
                assert item.timepoint_id.startswith("pre_") or item.timepoint_id in allowed
            hidden = [e for e in sim.exposures[eid] if e.timepoint_id not in allowed and e.event_type == "told"]
            for item in hidden:
                assert item.information not in wall.front and item.information not in wall.back
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(go(folder))


def test_judged_outcomes_move_the_ledger_and_trust(tmp_path):
    async def go():
        sim = await new_simulation(tmp_path)
        a, b, c = list(sim.entities)
        tp = opening(sim)
        judged = aftermath_schema([a, b, c]).model_validate({"summary": "s", "items": [], "feelings": [], "exchanges": [
            {"speaker": a, "target": b, "tactic": "data_argument", "outcome": "dismissed", "reason": "No."},
            {"speaker": a, "target": c, "tactic": "procedural_challenge", "outcome": "accepted", "reason": "Yes."},
            {"speaker": b, "target": b, "tactic": "humor_deflection", "outcome": "accepted", "reason": "Self."},
        ]})
        before_ab = sim.relationships[tuple(sorted((a, b)))].trust
        update_arcs(sim, tp, judged.exchanges)
        ledger = sim.entities[a].mind.trust_ledger
        tactics = [(x.tactic, x.target, x.outcome, x.reason) for x in sim.entities[a].mind.attempts]
        return ledger, tactics, before_ab, sim.relationships[tuple(sorted((a, b)))].trust, sim.entities[b].mind, \
            (a, b, c)
    ledger, tactics, before, after, b_mind, (a, b, c) = asyncio.run(go())
    assert tactics == [("data_argument", b, "dismissed", "No."), ("procedural_challenge", c, "accepted", "Yes.")]
    assert ledger == {b: -0.15, c: 0.1}
    assert after == round(before - 0.075, 4)
    assert not b_mind.attempts    # nobody aims a tactic at themselves


def test_a_run_scores_every_dialog_and_keeps_what_it_left_behind(timepoint):
    result = timepoint("model=test", "template=board_meeting")
    assert result.code == 0, result.stderr
    db = sqlite3.connect(result.run_dir / "run.db")
    rows = db.execute("SELECT quality_score, voice_distinctiveness, quality_checks, ending FROM dialogs").fetchall()
    assert rows and all(q is not None and v is not None and e for q, v, c, e in rows)
    surface = {"hedging_openers", "not_round_robin", "length_variation", "low_consensus", "speaker_length_spread"}
    caught = {"degenerate_caught", "degenerate_dropped", "degenerate_reasons"}
    assert all(set(json.loads(c)) == surface | caught for _, _, c, _ in rows)
    log = result.stdout + result.stderr
    assert log.count("Dialog quality check: score=") == len(rows)
    assert log.count("Voice distinctiveness score: ") == len(rows)
    moves = {m for (m,) in db.execute("SELECT DISTINCT dialog_move FROM turns")}
    assert moves and moves <= {"direct_statement", "deflection", "strategic_question", "alliance_signal",
                               "partial_disclosure", "status_move", "humor"}
    minds = [json.loads(m) for (m,) in db.execute("SELECT mind FROM entities")]
    assert any(m["memory"] for m in minds) and any(m["attempts"] for m in minds)
    assert db.execute("SELECT COUNT(DISTINCT timepoint_id) FROM relationship_states").fetchone()[0] >= 2
    usage = {m for (m,) in db.execute("SELECT DISTINCT mechanism FROM mechanism_usage")}
    assert {"M11", "M13", "M15", "M19"} <= usage
    roles = {r for (r,) in db.execute("SELECT DISTINCT role FROM llm_calls")}
    assert {"steering", "dialog", "judge", "extraction", "summary"} <= roles


def test_run_dialog_is_the_engine(tmp_path):
    async def go():
        sim = await new_simulation(tmp_path, "dialog.max_turns=5", "dialog.min_turns=4")
        tp = opening(sim)
        return await run_dialog(sim, tp, list(sim.entities))
    dialog = asyncio.run(go())
    assert 4 <= len(dialog.turns) <= 5 and dialog.quality_score is not None


class Judging(TestProvider):
    """The test model with a scripted judge; every call takes a moment, and when each starts and ends is noted."""

    def __init__(self, card, ratings: str):
        super().__init__(card)
        self.ratings, self.events = ratings, []

    async def complete(self, request):
        title = request.json_schema.get("title")
        self.events.append(("start", title))
        await asyncio.sleep(0.05)
        self.events.append(("end", title))
        if title == "SemanticCheck":
            return Completion(json.dumps({k: self.ratings for k in (
                "narrative_advancement", "conflict_specificity", "voice_distinctiveness", "naturalness")}
                | {"ai_patterns": []}), 10, 10)
        return await super().complete(request)

    def overlap(self, a: str, b: str) -> bool:
        at = self.events.index
        return at(("start", a)) < at(("end", b)) and at(("start", b)) < at(("end", a))


def judged_dialog(tmp_path, ratings: str):
    """A dialog lived through at the opening timepoint, its surface checks passed, judged by `ratings`."""
    from timepoint.dialog import graph
    from timepoint.modes.common import live_through

    async def go():
        sim = await new_simulation(tmp_path, "dialog.max_turns=4", "dialog.min_turns=4")
        provider = Judging(sim.gateway._models["test"].card, ratings)
        sim.gateway._models["test"].provider = provider
        surface = graph.DialogEngine._final_quality
        graph.DialogEngine._final_quality = lambda self, *a: {**surface(self, *a), "passed": True}
        try:
            dialog = await live_through(sim, opening(sim))
        finally:
            graph.DialogEngine._final_quality = surface
        return sim, dialog, provider
    return asyncio.run(go())


def test_the_judge_reads_a_dialog_beside_its_aftermath_and_its_verdict_is_kept(tmp_path):
    sim, dialog, provider = judged_dialog(tmp_path / "good", "good")
    assert dialog.semantic["passed"] is True and dialog.semantic["naturalness"] == 0.7
    assert dialog.quality_passed is True
    assert provider.overlap("SemanticCheck", "DialogOutcome"), "the judge waits on nothing in the aftermath"
    row = sim.store.rows("dialogs")[0]
    assert json.loads(row["semantic"])["passed"] is True and row["quality_passed"] == 1

    sim, dialog, _ = judged_dialog(tmp_path / "poor", "poor")
    assert dialog.semantic["passed"] is False and dialog.quality_passed is False
    assert sim.store.rows("dialogs")[0]["quality_passed"] == 0
