"""BRANCHING, CYCLICAL and DIRECTORIAL on the test model: branch points follow the schedule and
every branch is a timeline hanging from its parent; cycles, escalation and prophecy records;
five acts whose tension follows the targets; and every mode's generating prompts carry the premise."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest
from conftest import new_simulation
from hypothesis import given
from hypothesis import strategies as st

from timepoint.config import load_mode
from timepoint.modes import MODES, branching, cyclical, directorial
from timepoint.scenario import load_template


def rows(tmp_path, sql: str, *args) -> list[dict]:
    db = sqlite3.connect(tmp_path / "run.db")
    db.row_factory = sqlite3.Row
    return [dict(r) for r in db.execute(sql, args)]


def timepoints(tmp_path, timeline: str = "main") -> list[dict]:
    found = rows(tmp_path, "SELECT * FROM timepoints WHERE timeline_id = ? ORDER BY idx", timeline)
    return [{**tp, "metadata": json.loads(tp["metadata"]), "entities": json.loads(tp["entities_present"])}
            for tp in found]


def run_mode(tmp_path, *overrides):
    async def go():
        sim = await new_simulation(tmp_path, *overrides)
        await MODES[sim.mode].run(sim)
        return sim
    return asyncio.run(go())


# -- BRANCHING ----------------------------------------------------------------------------


def grow_watching(tmp_path, *overrides):
    """Grow the tree, recording each expanded state with its children and each pruning."""
    async def go():
        sim = await new_simulation(tmp_path, *overrides)
        brancher = branching.Brancher(sim, sim.mode_config)
        expansions, prunes = [], []
        expand, prune = brancher.expand, brancher.prune

        async def watch_expand(b):
            children = await expand(b)
            expansions.append((b, children))
            return children

        def watch_prune(states):
            kept = prune(states)
            prunes.append((len(states), kept))
            return kept
        brancher.expand, brancher.prune = watch_expand, watch_prune
        return brancher, await brancher.grow(), expansions, prunes
    return asyncio.run(go())


def test_branch_points_follow_the_schedule_and_fork_three_ways(tmp_path):
    brancher, paths, expansions, prunes = grow_watching(
        tmp_path, "template=castaway_colony_branching", "mode.steps=6", "mode.branch_count=2")
    interval = 6 // 2
    interventions = brancher.sim.template.interventions
    for parent, children in expansions:
        own = [c for c in children if c.outcome != "intervention"]
        due = [iv for iv in interventions if iv.step == parent.step + 1]
        assert len(children) - len(own) == len(due)            # one counterfactual per intervention due
        scheduled = parent.step > 0 and parent.step % interval == 0
        worded = any(w in parent.description.lower() for w in branching.DECISION_WORDS)
        if scheduled or worded:
            assert [c.outcome for c in own] == ["positive", "negative", "twist"]
        else:
            assert [c.outcome for c in own] == ["continuation"]
        assert all(c.step == parent.step + 1 and c.at > parent.at and c.parent is parent for c in children)
    assert any(p.step == 3 for p, _ in expansions)
    for before, kept in prunes:                                  # pruning bounds, interventions protected
        carried = {id(iv) for b in kept for iv in b.interventions}
        assert len(kept) == before if before <= 6 else 4 <= len(kept) <= 4 + len(interventions)
        if before > 6:
            assert len(carried) >= min(len(interventions), 1)
    assert all(len(p) == 7 and p[0].id == "root" for p in paths)


def test_every_branch_is_a_timeline_hanging_from_its_branch_point(tmp_path):
    sim = run_mode(tmp_path, "template=castaway_colony_branching")
    timelines = rows(tmp_path, "SELECT * FROM timelines ORDER BY rank")
    assert timelines[0]["timeline_id"] == "main" and timelines[0]["parent_timeline_id"] is None
    assert len(timelines) > 1
    by_id = {tp["timepoint_id"]: tp for tp in rows(tmp_path, "SELECT * FROM timepoints")}
    main = timepoints(tmp_path)
    assert len(main) == sim.template.timepoints and all(b["causal_parent"] == a["timepoint_id"]
                                                         for a, b in zip(main, main[1:]))
    for tl in timelines[1:]:
        parent, point = tl["parent_timeline_id"], tl["branch_point"]
        assert parent in {t["timeline_id"] for t in timelines if t["rank"] < tl["rank"]}
        assert by_id[point]["timeline_id"] == parent                # the branch point is on the parent
        own = timepoints(tmp_path, tl["timeline_id"])
        assert own and own[0]["causal_parent"] == point           # the branch hangs from it
        assert own[0]["idx"] == by_id[point]["idx"] + 1
        assert json.loads(tl["metadata"])["name"].endswith("branch")


def test_interventions_shape_the_branches_that_carry_them(tmp_path):
    sim = run_mode(tmp_path, "template=castaway_colony_branching")
    removal = next(iv for iv in sim.template.interventions if iv.type == "entity_removal")
    carrying = [tp for tp in rows(tmp_path, "SELECT * FROM timepoints")
                if removal.description in json.loads(tp["metadata"]).get("interventions", [])]
    assert carrying, "the declared counterfactual survives pruning"
    assert all(removal.target not in json.loads(tp["entities_present"]) for tp in carrying)
    assert all(tp["idx"] >= removal.step for tp in carrying)


def test_resources_move_by_rate_and_changes_within_bounds(tmp_path):
    sim = run_mode(tmp_path, "template=castaway_colony_branching")
    spec = sim.template.resources
    for tp in timepoints(tmp_path):
        for name, value in tp["metadata"]["resources"].items():
            r = spec[name]
            assert (r.min is None or value >= r.min) and (r.max is None or value <= r.max)


def test_an_intervention_past_the_last_step_is_refused(timepoint):
    result = timepoint("model=test", "template=vc_pitch_branching", "mode.steps=1")
    assert result.code == 2
    assert "interventions: step 2" in result.stderr and "allowed: 1..1" in result.stderr


# -- CYCLICAL -----------------------------------------------------------------------------


def test_cycles_escalate_and_prophecies_are_recorded_and_checked(tmp_path):
    sim = run_mode(tmp_path, "template=agent4_elk_migration", "mode.loops=3")
    length = sim.template.cycle.length
    main = timepoints(tmp_path)
    assert len(main) == 3 * length
    assert [(tp["metadata"]["cycle"], tp["metadata"]["position"]) for tp in main] == \
        [(k, p) for k in range(3) for p in range(length)]
    assert [tp["metadata"]["phase"] for tp in main[:length]] == sim.template.cycle.phases
    assert [tp["metadata"]["escalation"] for tp in main[::length]] == [0.0, 0.5, 1.0]
    assert all(tp["metadata"]["boundary"] == (tp["metadata"]["position"] == 0) for tp in main)
    timeline = json.loads(rows(tmp_path, "SELECT metadata FROM timelines WHERE timeline_id='main'")[0]["metadata"])
    prophecies = timeline["prophecies"]
    expected = 0 if timeline["semantics"]["prophecy_mechanism"] == "none" else 2
    assert len(prophecies) == expected
    for pr in prophecies:
        assert pr["made_in_cycle"] <= pr["target_cycle"] <= 2
        assert pr["fulfilled"] is not None and pr["confidence"] is not None     # every one was checked
        assert pr["fulfilled"] is False or pr["confidence"] >= sim.mode_config.prophecy_accuracy
        spoken = main[pr["timepoint_index"]]
        assert spoken["metadata"]["position"] == 0 and spoken["metadata"]["prophecy"]["text"] == pr["text"]
        heard = rows(tmp_path, "SELECT entity_id FROM exposure_events WHERE timepoint_id = ? AND "
                               "event_type = 'expectation' AND information LIKE 'Foretold%'", spoken["timepoint_id"])
        assert {h["entity_id"] for h in heard} == set(spoken["entities"])
    assert 0 <= rows(tmp_path, "SELECT coherence FROM timelines WHERE timeline_id='main'")[0]["coherence"] <= 1


def test_cycle_shape_comes_from_mode_then_template():
    elk = load_template("agent4_elk_migration")[0]
    defaults = load_mode("cyclical")
    assert cyclical.shape(elk, defaults) == (3, 2)                       # the template's cycle: 6 = 2 × 3
    assert cyclical.shape(elk, defaults.model_copy(update={"cycle_length": 2})) == (2, 3)
    assert cyclical.shape(elk, defaults.model_copy(update={"loops": 4})) == (3, 4)
    no_cycle = elk.model_copy(update={"cycle": None})
    assert cyclical.shape(no_cycle, defaults) == (4, 2)                  # 6 // 4 is 1: at least two loops


# -- DIRECTORIAL --------------------------------------------------------------------------


def test_five_acts_in_order_with_tension_following_the_targets(tmp_path):
    sim = run_mode(tmp_path, "template=hound_shadow_directorial", "mode.steps=10", "mode.path_count=2")
    main = timepoints(tmp_path)
    assert len(main) == 10
    acts = [tp["metadata"]["act"] for tp in main]
    assert list(dict.fromkeys(acts)) == list(directorial.ACTS)               # all five, in order
    for tp in main:
        m = tp["metadata"]
        assert abs(m["tension"] - m["tension_target"]) <= 0.3 + 1e-9          # pulled 70/30 to the target
        assert m["tension_target"] <= sim.mode_config.dramatic_tension
    climax = [tp["metadata"]["tension_target"] for tp in main if tp["metadata"]["act"] == "climax"]
    setup = [tp["metadata"]["tension_target"] for tp in main if tp["metadata"]["act"] == "setup"]
    assert min(climax) > max(setup)
    timelines = rows(tmp_path, "SELECT * FROM timelines ORDER BY rank")
    assert [t["timeline_id"] for t in timelines] == ["main", "draft_1"]
    scores = [json.loads(t["metadata"])["score"] for t in timelines]
    assert scores == sorted(scores, reverse=True)
    meta = json.loads(timelines[0]["metadata"])
    assert [a["act"] for a in meta["acts"]] == list(directorial.ACTS)
    assert sum(meta["pov_distribution"].values()) == 10


class Plan:
    def __init__(self, ends):
        for act, end in zip(directorial.ACTS, ends):
            setattr(self, f"{act}_ends_at_percent", end)


def test_a_plan_with_disordered_acts_falls_back_to_the_standard_split():
    bounds = directorial.act_bounds(Plan([30, 20, 80, 90]))
    assert [round(e, 2) for _, _, e in bounds] == [0.2, 0.5, 0.7, 0.85, 1.0]
    planned = directorial.act_bounds(Plan([10, 40, 60, 90]))
    assert [round(e, 2) for _, _, e in planned] == [0.1, 0.4, 0.6, 0.9, 1.0]


@given(st.floats(0, 1), st.floats(0.05, 1))
def test_tension_targets_scale_with_dramatic_tension(position, scale):
    bounds = directorial.act_bounds(Plan([20, 50, 70, 85]))
    full = directorial.tension_target(position, bounds, 1.0)
    assert 0.1 <= full <= 1.0
    assert directorial.tension_target(position, bounds, scale) == pytest.approx(full * scale, abs=1e-4)


# -- every mode ---------------------------------------------------------------------------

MODE_SCHEMAS = {"NextEvent", "CandidateStates", "Rating", "CandidateRanking", "SimulatedStep", "Consequents",
                "CycleSemantics", "CycleState", "Prophecy", "FulfilmentCheck", "LoopClosure", "CycleJudgement",
                "NarrativePlan", "CameraPlan", "Scene", "DraftVerdict"}


@pytest.mark.parametrize("template", ["board_meeting", "mars_mission_portal", "vc_pitch_branching",
                                      "agent4_elk_migration", "hound_shadow_directorial"])
def test_every_generating_prompt_of_every_mode_carries_the_premise(tmp_path, template):
    async def go():
        sim = await new_simulation(tmp_path, f"template={template}", "dialog.max_turns=2", "dialog.min_turns=2")
        seen = []
        structured = sim.gateway.structured

        async def recording(role, messages, schema, **kw):
            seen.append((schema.__name__, messages[-1]["content"]))
            return await structured(role, messages, schema, **kw)
        sim.gateway.structured = recording
        await MODES[sim.mode].run(sim)
        return sim, seen
    sim, seen = asyncio.run(go())
    generating = [(name, text) for name, text in seen if name in MODE_SCHEMAS]
    assert generating
    assert all(sim.template.premise in text for _, text in generating)
