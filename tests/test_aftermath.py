"""After a dialog: state changes come from the model's judgement in the one aftermath call, not from
counted keywords; energy falls with effort and comes back with rest; the body weighs on the mind
without compounding; and turning M13, M15 or M19 off removes its calls, its rows and its data."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from datetime import datetime, timedelta

import pytest
from conftest import new_simulation
from hypothesis import given
from hypothesis import strategies as st

from timepoint.dialog.effects import DELTAS, after_dialog
from timepoint.export.training import training_records
from timepoint.llm.providers.test import TestProvider
from timepoint.llm.request import Completion
from timepoint.modes import MODES
from timepoint.world import CognitiveState, Dialog, PhysicalState, Timepoint, Turn


class Judge(TestProvider):
    """The test model, keeping every request; the aftermath call answers with `judgement(schema)`."""

    def __init__(self, judgement=None):
        super().__init__(None)
        self.requests, self.judgement = [], judgement

    async def complete(self, request):
        self.requests.append(request)
        if self.judgement and request.json_schema.get("title") == "DialogOutcome":
            return Completion(json.dumps(self.judgement(request.json_schema)), 10, 10)
        return await super().complete(request)

    def titles(self) -> Counter:
        return Counter(r.json_schema.get("title") for r in self.requests)

    def schemas(self, title: str) -> list[dict]:
        return [r.json_schema for r in self.requests if r.json_schema.get("title") == title]


def judged(**parts):
    """A judgement with these parts, keeping only the fields the schema asks for."""
    def answer(schema: dict) -> dict:
        full = {"summary": "They argued about the numbers and parted unconvinced.", "items": [], **parts}
        return {k: v for k, v in full.items() if k in schema["properties"]}
    return answer


def at(sim, index: int, when: datetime, present: list[str]) -> Timepoint:
    """Live the mechanisms of a timepoint at `when` with `present` (no dialog)."""
    tp = Timepoint(id=f"tp_{index:03d}", index=index, timestamp=when, event=f"event {index}",
                   entities_present=present, causal_parent=sim.timepoints[-1].id if sim.timepoints else None)
    sim.at_timepoint(tp)
    sim.add_timepoint(tp)
    return tp


def talk(tp: Timepoint, a: str, b: str, agreeable: bool = True) -> Dialog:
    reply = "Yes, agreed, great, you're right, let's do it, thanks!" if agreeable else "No. Wrong. Never."
    return Dialog(id=f"d_{tp.id}", timepoint_id=tp.id, participants=[a, b], turns=[
        Turn(index=0, speaker=a, content="The data says we lose 42 percent of the grant.", move_target=b),
        Turn(index=1, speaker=b, content=reply),
        Turn(index=2, speaker=a, content="Then we agree: we vote on it tomorrow.", move_target=b),
        Turn(index=3, speaker=b, content=reply),
    ])


def with_judge(tmp_path, judgement, body, *overrides):
    async def go():
        judge = Judge(judgement)
        sim = await new_simulation(tmp_path, *overrides, providers={"test": judge})
        try:
            return await body(sim, judge)
        finally:
            await sim.gateway.close()
            sim.store.close()
    return asyncio.run(go())


# --- judged, not counted ------------------------------------------------------------------------

def test_a_dismissal_lowers_trust_even_when_the_reply_sounds_like_agreement(tmp_path):
    def judgement(schema):
        a, b = schema["$defs"]["Exchange"]["properties"]["speaker"]["enum"][:2] \
            if "Exchange" in schema.get("$defs", {}) else ("?", "?")
        return judged(exchanges=[
            {"speaker": a, "target": b, "tactic": "data_argument", "outcome": "dismissed",
             "reason": "Agrees aloud, then changes the subject: the figure is brushed aside."},
            {"speaker": a, "target": b, "tactic": "procedural_challenge", "outcome": "dismissed",
             "reason": "The vote is waved off with a shrug."},
        ], feelings=[])(schema)

    async def body(sim, judge):
        a, b = list(sim.entities)[:2]
        tp = at(sim, 0, sim.time_of(0), [a, b])
        pair = tuple(sorted((a, b)))
        before = sim.relationships[pair].trust
        await after_dialog(sim, tp, talk(tp, a, b, agreeable=True))
        attempts = [(x.tactic, x.target, x.outcome, x.reason) for x in sim.entities[a].mind.attempts]
        usage = [r["hook"] for r in sim.store.rows("mechanism_usage") if r["mechanism"] == "M13"]
        return a, b, before, sim.relationships[pair].trust, sim.entities[a].mind.trust_ledger, attempts, usage

    a, b, before, after, ledger, attempts, usage = with_judge(tmp_path, judgement, body)
    assert attempts == [
        ("data_argument", b, "dismissed", "Agrees aloud, then changes the subject: the figure is brushed aside."),
        ("procedural_challenge", b, "dismissed", "The vote is waved off with a shrug.")]
    assert ledger == {b: round(2 * DELTAS["trust"]["dismissed"], 4)}
    assert after == round(before + DELTAS["trust"]["dismissed"], 4) < before   # two dismissals, half each
    assert usage == ["trust"]


def test_trust_that_does_not_move_fires_no_m13(tmp_path):
    def judgement(schema):
        ids = schema["$defs"]["Exchange"]["properties"]["speaker"]["enum"] \
            if "Exchange" in schema.get("$defs", {}) else ["?", "?"]
        return judged(exchanges=[{"speaker": ids[0], "target": ids[1], "tactic": "emotional_appeal",
                                  "outcome": "deferred", "reason": "Left for later."}], feelings=[])(schema)

    async def body(sim, judge):
        a, b = list(sim.entities)[:2]
        tp = at(sim, 0, sim.time_of(0), [a, b])
        before = dict(sim.relationships)
        trust = {k: r.trust for k, r in before.items()}
        await after_dialog(sim, tp, talk(tp, a, b, agreeable=False))
        return (trust, {k: r.trust for k, r in sim.relationships.items()}, sim.entities[a].mind.attempts,
                [r for r in sim.store.rows("mechanism_usage") if r["mechanism"] == "M13"])

    before, after, attempts, usage = with_judge(tmp_path, judgement, body)
    assert before == after and [x.outcome for x in attempts] == ["deferred"] and usage == []


def test_emotional_shifts_follow_the_judgement_not_the_words(tmp_path):
    def judgement(schema):
        ids = schema["$defs"]["Feeling"]["properties"]["who"]["enum"] \
            if "Feeling" in schema.get("$defs", {}) else ["?", "?"]
        return judged(exchanges=[], feelings=[
            {"who": ids[0], "mood": "much worse", "stir": "more stirred", "why": "Humiliated in front of the board."},
            {"who": ids[1], "mood": "better", "stir": "calmer", "why": "Got the last word, politely."},
        ])(schema)

    async def body(sim, judge):
        a, b = list(sim.entities)[:2]
        tp = at(sim, 0, sim.time_of(0), [a, b])
        before = {p: sim.entities[p].cognitive.model_copy() for p in (a, b)}
        await after_dialog(sim, tp, talk(tp, a, b, agreeable=True))   # every word of it upbeat
        return before, {p: sim.entities[p].cognitive for p in (a, b)}, a, b

    before, after, a, b = with_judge(tmp_path, judgement, body)
    assert after[a].valence == pytest.approx(max(-1, before[a].valence + DELTAS["valence"]["much worse"]))
    assert after[b].valence == pytest.approx(min(1, before[b].valence + DELTAS["valence"]["better"]))
    settle = {p: 0.3 + 0.85 * (before[p].arousal - 0.3) for p in (a, b)}
    assert after[a].arousal == pytest.approx(min(1, settle[a] + DELTAS["arousal"]["more stirred"]), abs=1e-4)
    assert after[b].arousal == pytest.approx(max(0, settle[b] + DELTAS["arousal"]["calmer"]), abs=1e-4)


# --- energy: effort and rest ----------------------------------------------------------------------

def test_energy_falls_across_a_busy_hour_and_a_night_restores_most_of_it(tmp_path):
    async def body(sim, judge):
        a, b = list(sim.entities)[:2]
        day = datetime(2030, 5, 6, 9, 0)
        tp = at(sim, 0, day, [a, b])
        start = sim.entities[a].cognitive.energy
        await after_dialog(sim, tp, talk(tp, a, b))           # a speaks twice
        spoken = sim.entities[a].cognitive.energy
        at(sim, 1, day + timedelta(hours=1), [a, b])
        busy = sim.entities[a].cognitive.energy
        for e in (a, b):
            sim.entities[e].cognitive = sim.entities[e].cognitive.model_copy(update={"energy": 30.0})
        at(sim, 2, day + timedelta(hours=8), [a, b])           # 17:00, after a long day
        evening = sim.entities[a].cognitive.energy
        at(sim, 3, day + timedelta(days=1), [a, b])            # next morning, 09:00
        return start, spoken, busy, evening, sim.entities[a].cognitive.energy

    start, spoken, busy, evening, morning = with_judge(tmp_path, None, body)
    assert spoken < start and busy < spoken                    # turns and the hour both cost
    assert evening < 30 + 0.5 * 70                             # an afternoon off is not a night's sleep
    assert morning > 80                                         # a night restores most of it


@pytest.mark.parametrize(("since", "until", "rest"), [
    ((9, 0), (10, 0), 0.0),        # back to back: no rest
    ((22, 0), (23, 0), 0.0),       # a scene at night is not sleep
    ((10, 0), (17, 0), 1.5),       # an afternoon off: six idle hours, a quarter each
    ((17, 0), (33, 0), 9.75),      # evening to next morning: a night (8) and seven idle hours
])
def test_rest_between_scenes(since, until, rest):
    from timepoint.mechanisms import circadian as m14
    day = datetime(2030, 5, 6)
    assert m14.rest_hours(day + timedelta(hours=since[0], minutes=since[1]),
                          day + timedelta(hours=until[0], minutes=until[1])) == pytest.approx(rest)
    assert m14.rested(40, 8) == pytest.approx(100 - 60 * 0.1353, abs=0.01)   # a night: 86% of the shortfall
    assert m14.rested(120, 8) == 120 and m14.rested(40, 0) == 40


# --- the body weighs without compounding -------------------------------------------------------

@given(cog=st.builds(CognitiveState, valence=st.floats(-0.5, 0.5), energy=st.floats(0, 100),
                     confidence=st.floats(0, 1), patience=st.floats(40, 100), risk=st.floats(0, 0.8),
                     social=st.floats(0.4, 1)),
       phys=st.builds(PhysicalState, pain=st.floats(0, 1), fever=st.floats(36, 41)))
def test_a_load_lifts_exactly(cog, phys):
    from timepoint.mechanisms import embodiment as m8
    felt = m8.embodied(cog, phys)
    factors, offsets = m8.load(phys)
    applied = {"factor": factors, "offset": {f: getattr(felt, f) - getattr(cog, f) for f in offsets}}
    beneath = m8.unburdened(felt, applied)
    again = m8.embodied(beneath, phys)                      # the next timepoint, the same body
    for f in ("valence", "energy", "confidence", "patience", "risk", "social"):
        assert getattr(beneath, f) == pytest.approx(getattr(cog, f), abs=1e-9)
        assert getattr(again, f) == pytest.approx(getattr(felt, f), abs=1e-9)


def test_pain_weighs_on_the_mind_once_not_every_timepoint(tmp_path):
    async def body(sim, judge):
        sore, well = list(sim.entities)[:2]
        sim.entities[sore].physical = sim.entities[sore].physical.model_copy(update={"pain": 0.8, "fever": 39.5})
        for e in (sore, well):
            sim.entities[e].cognitive = sim.entities[e].cognitive.model_copy(update={"valence": 0.2, "energy": 90})
        seen = []
        for i in range(5):
            at(sim, i, sim.time_of(0) + timedelta(hours=i), [sore, well])
            seen.append((sim.entities[sore].cognitive.model_copy(), sim.entities[well].cognitive.model_copy()))
        sim.entities[sore].physical = sim.entities[sore].physical.model_copy(update={"pain": 0.0, "fever": 36.6})
        at(sim, 5, sim.time_of(0) + timedelta(hours=5), [sore, well])
        return seen, sim.entities[sore].cognitive

    seen, healed = with_judge(tmp_path, None, body)
    valences = [s.valence for s, _ in seen]
    assert valences == pytest.approx([0.2 - 0.3 * 0.8] * 5)            # settles: no further fall
    assert [s.patience for s, _ in seen] == pytest.approx([seen[0][0].patience] * 5)
    assert [s.social for s, _ in seen] == pytest.approx([seen[0][0].social] * 5)
    drops = [(s0.energy - s1.energy, w0.energy - w1.energy) for (s0, w0), (s1, w1) in zip(seen, seen[1:])]
    for sore_drop, well_drop in drops:                                   # the hour costs both alike
        assert sore_drop <= well_drop + 1e-6
    assert seen[0][0].energy < seen[0][1].energy                          # but pain weighs on energy
    assert healed.valence == pytest.approx(0.2)                          # and lifts when it goes


def test_a_judged_mood_survives_the_body(tmp_path):
    def judgement(schema):
        ids = schema["$defs"]["Feeling"]["properties"]["who"]["enum"] \
            if "Feeling" in schema.get("$defs", {}) else ["?", "?"]
        return judged(exchanges=[], feelings=[{"who": i, "mood": "better", "stir": "unchanged", "why": "Heard."}
                                              for i in ids])(schema)

    async def body(sim, judge):
        a, b = list(sim.entities)[:2]
        sim.entities[a].physical = sim.entities[a].physical.model_copy(update={"pain": 0.5})
        tp = at(sim, 0, sim.time_of(0), [a, b])
        pained = sim.entities[a].cognitive.valence
        await after_dialog(sim, tp, talk(tp, a, b))
        at(sim, 1, sim.time_of(0) + timedelta(hours=1), [a, b])
        return pained, sim.entities[a].cognitive.valence

    pained, later = with_judge(tmp_path, judgement, body)
    assert later == pytest.approx(pained + DELTAS["valence"]["better"])


# --- honest mechanisms: off means no calls, no rows, no data -------------------------------------

def everyone_judged(schema: dict) -> dict:
    """Each participant tells a fact; each presses a figure on every later one and is dismissed; all feel worse."""
    ids = schema.get("$defs", {}).get("Feeling", {}).get("properties", {}).get("who", {}).get("enum", [])
    pairs = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]]
    return judged(
        items=[{"content": f"{a} says the audit found a 3 million gap.", "speaker": a, "category": "fact"}
               for a in ids][:4],
        exchanges=[{"speaker": a, "target": b, "tactic": "data_argument", "outcome": "dismissed",
                    "reason": "Waved away."} for a, b in pairs],
        feelings=[{"who": a, "mood": "worse", "stir": "more stirred", "why": "Nobody listened."} for a in ids],
    )(schema)


def run_facts(tmp_path, *overrides) -> dict:
    async def body(sim, judge):
        initial = {pair: f"{r.trust:.2f}" for pair, r in sim.relationships.items()}
        await MODES[sim.mode].run(sim)
        sim.finish()
        db = sim.store
        minds = [json.loads(e["mind"]) for e in db.rows("entities")]
        rel = {}
        for r in db.rows("relationship_states"):
            rel.setdefault((r["entity_a"], r["entity_b"]), set()).add(r["trust"])
        records = training_records(db)
        record_trusts = {(tuple(sorted((rec["metadata"]["entity_id"], other))), value) for rec in records
                         for other, value in re.findall(r"^  (\S+): .*\(trust: ([\d.]+)", rec["prompt"], re.M)}
        gained = [g for rec in records for g in json.loads(rec["completion"])["new_knowledge_gained"]]
        return {
            "titles": judge.titles(),
            "outcome_fields": {f for s in judge.schemas("DialogOutcome") for f in s["properties"]},
            "usage": Counter(r["mechanism"] for r in db.rows("mechanism_usage")),
            "exposures": Counter(r["event_type"] for r in db.rows("exposure_events")),
            "memory": sum(len(m["memory"]) + len(m["rumination"]) for m in minds),
            "attempts": sum(len(m["attempts"]) + len(m["trust_ledger"]) for m in minds),
            "trusts_move": any(len(v) > 1 for v in rel.values()),
            "record_trusts_move": bool(record_trusts) and any(initial[p] != v for p, v in record_trusts),
            "told_in_records": [g for g in gained if not g.startswith(("Experienced:", "Preoccupied with:"))],
            "concern_in_records": [g for g in gained if g.startswith("Preoccupied with:")],
            "summary_calls": sum(r["role"] == "summary" for r in db.rows("llm_calls")),
            "summaries": [d["summary"] for d in db.rows("dialogs")],
        }
    return with_judge(tmp_path, everyone_judged, body, "template=board_meeting", "dialog.max_turns=4",
                      "dialog.min_turns=3", *overrides)


def all_but(*off: str) -> str:
    from timepoint.mechanisms import MECHANISMS
    return "mechanisms.enabled=[" + ",".join(m for m in MECHANISMS if m not in off) + "]"


@pytest.fixture(scope="module")
def everything(tmp_path_factory):
    return run_facts(tmp_path_factory.mktemp("all"))


def test_with_everything_on_the_aftermath_does_all_three(everything):
    f = everything
    assert f["outcome_fields"] == {"summary", "items", "exchanges", "feelings"}
    assert f["titles"]["MemoryNote"] == f["titles"]["Rumination"] > 0
    assert {"M13", "M15", "M19"} <= set(f["usage"])
    assert f["exposures"]["told"] > 0 and f["memory"] > 0 and f["attempts"] > 0
    assert f["trusts_move"] and f["record_trusts_move"] and f["told_in_records"]
    assert all(f["summaries"])


def test_m13_off_judges_no_exchanges_and_moves_no_trust(tmp_path, everything):
    f = run_facts(tmp_path, all_but("M13"))
    assert f["outcome_fields"] == {"summary", "items", "feelings"}
    assert "M13" not in f["usage"] and f["attempts"] == 0
    assert not f["trusts_move"] and not f["record_trusts_move"]
    assert f["exposures"]["told"] > 0 and f["memory"] > 0          # the others still do their part


def test_m15_off_makes_no_reflection_calls_and_leaves_no_memory(tmp_path, everything):
    f = run_facts(tmp_path, all_but("M15"))
    assert f["titles"]["MemoryNote"] == f["titles"]["Rumination"] == f["summary_calls"] == 0
    assert "M15" not in f["usage"] and f["memory"] == 0
    assert f["exposures"]["concern"] == 0 and f["concern_in_records"] == []
    assert f["outcome_fields"] == {"summary", "items", "exchanges", "feelings"}


def test_m19_off_extracts_no_knowledge_and_records_learn_nothing_said(tmp_path, everything):
    f = run_facts(tmp_path, all_but("M19"))
    assert f["outcome_fields"] == {"summary", "exchanges", "feelings"}
    assert "M19" not in f["usage"] and f["exposures"]["told"] == 0
    assert f["told_in_records"] == [] and everything["told_in_records"]
    assert all(f["summaries"])                                     # the dialog's own summary stays


def test_the_minimal_preset_pays_no_reflection(tmp_path):
    f = run_facts(tmp_path, "mechanisms=minimal")
    assert f["titles"]["MemoryNote"] == f["titles"]["Rumination"] == f["summary_calls"] == 0
    assert f["outcome_fields"] == {"summary", "items", "feelings"}
    assert not {"M13", "M15"} & set(f["usage"])


def test_the_estimate_plans_reflection_only_with_m15(tmp_path):
    from timepoint.__main__ import prepared

    def by_role(*overrides):
        return prepared(["model=test", "template=board_meeting", f"paths.home={tmp_path}", *overrides]
                         ).estimate().by_role
    assert by_role()["summary"] > 0
    assert "summary" not in by_role("mechanisms=minimal") and "summary" not in by_role(all_but("M15"))
    assert by_role("mechanisms=minimal")["extraction"] == by_role()["extraction"]
