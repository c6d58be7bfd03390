"""PORTAL on the test model: endpoint→origin chains, candidates per step, pruning bounds,
backtracking, oscillating exploration, and every path kept as a timeline."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import timedelta

import pytest
import yaml
from conftest import new_simulation

from timepoint.modes.portal import Portal, State, coherence
from timepoint.paths import TEMPLATES_DIR


@pytest.fixture
def portal_template(tmp_path):
    """convergence_simple, asked as a PORTAL question: back from a known endpoint."""
    raw = yaml.safe_load((TEMPLATES_DIR / "convergence_simple.yaml").read_text())
    raw.update(mode="portal", timepoints=5, portal={
        "endpoint": "The grant renewal is rejected after an anonymous complaint about Figure 3 reaches the agency.",
        "at": (raw["time"]["start"] + timedelta(days=120)).isoformat()})
    path = tmp_path / "portal_lab.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def search(tmp_path, template, *overrides):
    async def go():
        sim = await new_simulation(tmp_path, f"template={template}", *overrides)
        portal = Portal(sim, sim.mode_config)
        generated = []
        original = portal._generate

        async def counting(anchor, at, backward):
            states = await original(anchor, at, backward)
            generated.append((anchor, states))
            return states
        portal._generate = counting
        frontiers = []
        original_prune = portal._prune

        def watching(states):
            kept = original_prune(states)
            frontiers.append((len(states), len(kept)))
            return kept
        portal._prune = watching
        return portal, await portal.search(), generated, frontiers
    return asyncio.run(go())


def test_paths_run_endpoint_to_origin_with_falling_timestamps(tmp_path, portal_template):
    portal, paths, generated, frontiers = search(tmp_path, portal_template, "mode.candidates_per_step=3",
                                                 "mode.path_count=2")
    assert paths
    for path in paths:
        assert path[0].id == "endpoint" and path[0].at == portal.portal.at
        assert len(path) == portal.steps + 1
        assert all(a.at > b.at for a, b in zip(path, path[1:]))
        assert path[-1].at == portal.time_at(portal.steps) == portal.sim.template.time.start
    assert all(len(states) == 3 for _, states in generated)          # N candidates per state per step
    for before, after in frontiers:                                     # pruning bounds
        assert after == before if before <= 6 else after == 4


def test_simulation_judging_scores_every_candidate(tmp_path, portal_template):
    _, paths, generated, _ = search(tmp_path, portal_template, "mode.scoring=simulation",
                                    "mode.candidates_per_step=2", "mode.path_count=2")
    assert paths and all(0 < s.plausibility <= 1 for _, states in generated for s in states)


def test_oscillating_exploration_bridges_both_ends(tmp_path, portal_template):
    portal, paths, _, _ = search(tmp_path, portal_template, "mode.exploration=oscillating",
                                 "mode.candidates_per_step=2", "mode.path_count=2")
    assert paths
    for path in paths:
        assert path[0].id == "endpoint" and path[-1].id == "origin" and len(path) == portal.steps + 1
        assert all(a.at > b.at for a, b in zip(path, path[1:]))


def test_backtracking_regrows_from_a_better_sibling(tmp_path, portal_template):
    async def go():
        sim = await new_simulation(tmp_path, f"template={portal_template}", "mode.max_backtrack_depth=2")
        portal = Portal(sim, sim.mode_config)

        async def strong(anchor, at, backward):
            states = [State(id=f"g{k}", at=at, description="d", key_events=[], entities=[], causal_link="",
                            plausibility=0.9, source=anchor) for k in range(2)]
            for s in states:
                s.siblings = [o for o in states if o is not s]
            return states
        portal._generate = strong
        end = State(id="endpoint", at=portal.time_at(0), description="e", key_events=[], entities=[],
                    causal_link="", plausibility=1.0)
        weak = State(id="w", at=portal.time_at(1), description="w", key_events=[], entities=[], causal_link="",
                     plausibility=0.1, source=end)
        good = State(id="b", at=portal.time_at(1), description="b", key_events=[], entities=[], causal_link="",
                     plausibility=0.8, source=end)
        weak.siblings, good.siblings = [good], [weak]
        path = [end, weak] + [State(id=f"x{k}", at=portal.time_at(k), description="x", key_events=[], entities=[],
                                    causal_link="", plausibility=0.4) for k in range(2, portal.steps + 1)]
        assert coherence(path) < 0.5
        return portal, await portal.backtrack(path)
    portal, path = asyncio.run(go())
    assert path is not None and coherence(path) >= 0.5
    assert path[1].id == "b" and len(path) == portal.steps + 1


def test_a_portal_run_keeps_every_path_and_follows_the_best(timepoint, portal_template):
    result = timepoint("model=test", f"template={portal_template}", "mode.path_count=2",
                       "mode.candidates_per_step=2", "dialog.max_turns=6")
    assert result.code == 0, result.stderr
    assert result.summary["mode"] == "portal"
    db = sqlite3.connect(result.run_dir / "run.db")
    timelines = db.execute("SELECT timeline_id, rank, coherence, metadata FROM timelines ORDER BY rank").fetchall()
    assert timelines[0][:2] == ("main", 0) and len(timelines) >= 2
    assert [c for _, _, c, _ in timelines] == sorted((c for _, _, c, _ in timelines), reverse=True)
    assert "pivots" in json.loads(timelines[0][3])
    for timeline, *_ in timelines:
        tps = db.execute("SELECT timepoint_id, causal_parent, timestamp FROM timepoints WHERE timeline_id = ? "
                         "ORDER BY idx", (timeline,)).fetchall()
        assert len(tps) == 5 and tps[0][1] is None
        assert all(c[1] == p[0] and c[2] > p[2] for p, c in zip(tps, tps[1:]))
    dialog_tps = {tp for (tp,) in db.execute("SELECT timepoint_id FROM dialogs")}
    main = {tp for (tp,) in db.execute("SELECT timepoint_id FROM timepoints WHERE timeline_id = 'main'")}
    assert dialog_tps and dialog_tps <= main
    for line in (result.run_dir / "training.jsonl").open():
        assert json.loads(line)["metadata"]["timepoint_id"] in main


def test_portal_mode_needs_a_portal_template(timepoint):
    from test_bad_input import assert_refused
    assert_refused(timepoint("model=test", "template=board_meeting", "mode=portal"), "portal", "board_meeting")
