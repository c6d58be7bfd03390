"""A dataset that tells the truth: every record holds what its entity had at that moment (state, trust,
knowledge and arc as of T0, read from per-timepoint snapshots), never end-of-run values; PORTAL's
backward reasoning and BRANCHING's other branches are records too."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RunResult

TRUST_LINE = re.compile(r"^\s+(\w+): .*\(trust: (-?[\d.]+), alignment: (-?[\d.]+)")


def _run(tmp: Path, *overrides: str) -> RunResult:
    run_dir = tmp / "run"
    proc = subprocess.run([sys.executable, "-m", "timepoint", "model=test", *overrides, f"hydra.run.dir={run_dir}"],
                          capture_output=True, text=True, cwd=tmp, timeout=300,
                          env={**os.environ, "TIMEPOINT_HOME": str(tmp / "home")})
    assert proc.returncode == 0, proc.stderr
    return RunResult(proc.returncode, proc.stdout, proc.stderr, run_dir)


@pytest.fixture(scope="module")
def mars(tmp_path_factory) -> RunResult:
    """The issue's run: PORTAL, where trust moves between timepoints."""
    return _run(tmp_path_factory.mktemp("mars"), "template=mars_mission_portal")


def _section(prompt: str, title: str) -> list[str]:
    """The lines of one `=== TITLE ... ===` section of a prompt (empty when it is absent)."""
    lines, inside = [], False
    for line in prompt.splitlines():
        if line.startswith("=== "):
            inside = line.startswith(f"=== {title}")
            continue
        if inside:
            lines.append(line)
    return lines


def _records(run: RunResult, name: str) -> list[dict]:
    return [json.loads(line) for line in (run.run_dir / name).open()]


def _t0(record: dict) -> str:
    return json.loads(record["completion"])["metadata"]["timepoint_transition"].split(" -> ")[0]


def test_every_training_record_shows_trust_as_of_its_t0(mars):
    """Trust and alignment in RELATIONSHIP CONTEXT are the pair's relationship_states row at T0 — never
    the relationships table's end-of-run value."""
    db = sqlite3.connect(mars.run_dir / "run.db")
    states = {(a, b, tp): (trust, alignment) for a, b, tp, trust, alignment in db.execute(
        "SELECT entity_a, entity_b, timepoint_id, trust, alignment FROM relationship_states")}
    records = _records(mars, "training.jsonl")
    checked = 0
    for rec in records:
        entity, t0 = rec["metadata"]["entity_id"], _t0(rec)
        for line in _section(rec["prompt"], "RELATIONSHIP CONTEXT"):
            match = TRUST_LINE.match(line)
            if not match:
                continue
            other, trust, alignment = match.group(1), float(match.group(2)), float(match.group(3))
            want = states[(*sorted((entity, other)), t0)]
            assert (trust, alignment) == pytest.approx(want, abs=0.006), (entity, other, t0)
            checked += 1
    assert checked >= len(records) > 0


@pytest.fixture(scope="module")
def castaway(tmp_path_factory) -> RunResult:
    """BRANCHING with a declared intervention: branches that are not main, one of them counterfactual."""
    return _run(tmp_path_factory.mktemp("castaway"), "template=castaway_colony_branching")


def _db(run: RunResult) -> sqlite3.Connection:
    db = sqlite3.connect(run.run_dir / "run.db")
    db.row_factory = sqlite3.Row
    return db


def _valid(name: str, records: list[dict]) -> None:
    from jsonschema import Draft202012Validator

    from timepoint import schemas
    validator = Draft202012Validator(schemas.load(name))
    assert records
    for rec in records:
        assert not [e.message for e in validator.iter_errors(rec)]


def _ancestry(db: sqlite3.Connection, tp: str) -> list[str]:
    """`tp` and its causal ancestors, newest first."""
    parents = dict(db.execute("SELECT timepoint_id, causal_parent FROM timepoints").fetchall())
    chain = []
    while tp:
        chain.append(tp)
        tp = parents.get(tp)
    return chain


WHEN_LINE = re.compile(r'^  "(.*)" \((\w+), from (.+), (?:at (\S+)|before the story) \((\d{4}-\d\d-\d\d \d\d:\d\d)\), '
                       r"confidence ([\d.]+)\)$")


def test_knowledge_lines_say_how_from_whom_when_and_how_sure(mars):
    """Every provenance line names its event type, source, timepoint and time and confidence, matches an
    exposure in the store, and comes from T0 or before along the causal ancestry — never from T1 on."""
    db = _db(mars)
    names = {r["entity_id"]: r["name"] for r in db.execute("SELECT entity_id, name FROM entities")}
    seen = 0
    for rec in _records(mars, "training.jsonl"):
        entity, t0 = rec["metadata"]["entity_id"], _t0(rec)
        visible = set(_ancestry(db, t0))
        for line in _section(rec["prompt"], "KNOWLEDGE PROVENANCE"):
            match = WHEN_LINE.match(line)
            if not line.startswith('  "'):
                continue
            assert match, line
            info, kind, source, tp, when, confidence = match.groups()
            rows = [r for r in db.execute("SELECT * FROM exposure_events WHERE entity_id = ? AND event_type = ?",
                                          (entity, kind)) if r["information"].startswith(info)
                    and names.get(r["source"], r["source"]) == source
                    and abs(r["confidence"] - float(confidence)) < 0.006
                    and r["timestamp"].replace("T", " ")[:16] == when]
            assert rows, line
            assert any((r["timepoint_id"] == tp) if tp else r["timepoint_id"].startswith("pre_") for r in rows)
            assert tp is None or tp in visible
            seen += 1
    assert seen > 0


def _mind(db: sqlite3.Connection, entity: str, tp: str) -> dict:
    return json.loads(db.execute("SELECT mind FROM entity_states WHERE entity_id = ? AND timepoint_id = ?",
                                 (entity, tp)).fetchone()[0])


def test_character_arc_is_the_mind_snapshot_at_t0_and_moves_with_time(mars):
    """CHARACTER ARC counts the tactics tried by the end of T0 (entity_states.mind there), not the end
    of the run; one entity's arc reads differently at different timepoints."""
    db = _db(mars)
    arcs: dict[str, set[str]] = {}
    behind_final = 0
    for rec in _records(mars, "training.jsonl"):
        entity, t0 = rec["metadata"]["entity_id"], _t0(rec)
        arc = _section(rec["prompt"], "CHARACTER ARC")
        assert arc, rec["metadata"]
        mind = _mind(db, entity, t0)
        tried = next(line for line in arc if line.startswith("Tactics tried"))
        assert tried == ("Tactics tried: none yet." if not mind["attempts"]
                         else f"Tactics tried ({len(mind['attempts'])}), latest last:")
        final = json.loads(db.execute("SELECT mind FROM entities WHERE entity_id = ?", (entity,)).fetchone()[0])
        behind_final += len(mind["attempts"]) < len(final["attempts"])
        for target, move in mind["trust_ledger"].items():
            assert f"{move:+.2f}" in next(line for line in arc if line.startswith("Trust moves so far"))
        arcs.setdefault(entity, set()).add("\n".join(arc))
    assert behind_final > 0                              # earlier records do not know the end of the run
    assert any(len(texts) > 1 for texts in arcs.values())


def test_records_list_only_the_mechanisms_whose_sections_they_hold(mars):
    db = _db(mars)
    enabled = set(json.loads(db.execute("SELECT config_json FROM runs").fetchone()[0])["mechanisms"]["enabled"])
    for rec in _records(mars, "training.jsonl"):
        listed = rec["metadata"]["mechanisms"]
        assert set(listed) <= enabled and "M17" in listed
        tags = set(re.findall(r"^=== [A-Z ()0-9,]*?\(((?:M\d+(?:, )?)+)\) ===$", rec["prompt"], re.M))
        assert {m for tag in tags for m in tag.split(", ")} == set(listed)


def test_chat_records_carry_what_conditioned_each_turn(mars):
    """Speaker state as of the dialog's timepoint (its parent's snapshot, the opening one at the first),
    the steering move and its target, the archetype, the room M10 recorded, and the mode position."""
    from timepoint.dialog.archetypes import archetype_of
    db = _db(mars)
    tps = {r["timepoint_id"]: r for r in db.execute("SELECT * FROM timepoints")}
    turns = {(r["dialog_id"], r["idx"]): r for r in db.execute("SELECT * FROM turns")}
    people = {r["entity_id"]: r for r in db.execute("SELECT * FROM entities")}
    records = _records(mars, "chat.jsonl")
    _valid("chat", records)
    steps = max(tp["idx"] for tp in tps.values() if tp["timeline_id"] == "main")
    for rec in records:
        meta = rec["metadata"]
        tp, turn = tps[meta["timepoint_id"]], turns[(meta["dialog_id"], meta["turn_index"])]
        before = tp["causal_parent"] or f"pre_{tp['timepoint_id']}"
        cog = json.loads(db.execute("SELECT cognitive FROM entity_states WHERE entity_id = ? AND timepoint_id = ?",
                                    (meta["speaker"], before)).fetchone()[0])
        assert meta["speaker_state"] == {k: pytest.approx(cog[k], abs=1e-4) for k in ("valence", "arousal", "energy")}
        assert (meta["dialog_move"], meta["move_target"]) == (turn["dialog_move"], turn["move_target"])
        person = people[meta["speaker"]]
        assert meta["archetype"] == archetype_of(person["title"], person["description"])
        room = json.loads(tp["metadata"])["atmosphere"]
        assert meta["atmosphere"]["recorded"] and meta["atmosphere"]["tension"] == pytest.approx(room["tension"])
        assert meta["position"]["mode"] == "portal" and meta["position"]["steps_back"] == steps - tp["idx"]
    first = [r for r in records if r["metadata"]["timepoint_id"] == "tp_000"]
    assert first and all(r["metadata"]["speaker_state"] for r in first)   # the opening snapshot


def test_portal_writes_the_backward_task_for_every_path(mars):
    """backward.jsonl: per kept path, each antecedent from the endpoint back, with its step, the state it
    leads to, and the path's own words for it; the prompt never holds the answer."""
    db = _db(mars)
    records = _records(mars, "backward.jsonl")
    _valid("backward", records)
    tps = {r["timepoint_id"]: r for r in db.execute("SELECT * FROM timepoints")}
    paths = {t: sorted((tp for tp in tps.values() if tp["timeline_id"] == t), key=lambda tp: tp["idx"])
             for (t,) in db.execute("SELECT timeline_id FROM timelines")}
    covered = set()
    for rec in records:
        meta, answer = rec["metadata"], json.loads(rec["completion"])
        ante, path = tps[meta["timepoint_id"]], paths[meta["timeline_id"]]
        assert ante["timeline_id"] == meta["timeline_id"]
        assert meta["leads_to"] == path[ante["idx"] + 1]["timepoint_id"] == answer["leads_to"]
        assert meta["endpoint_id"] == path[-1]["timepoint_id"] and meta["steps"] == len(path) - 1
        assert meta["step"] == len(path) - 1 - ante["idx"] >= 1
        assert answer["situation"] == ante["event"] and answer["causal_link"] == ante["causal_link"]
        assert path[-1]["event"] in rec["prompt"] and ante["event"] not in rec["prompt"]
        covered |= {(t, ante["idx"]) for t in [meta["timeline_id"], *meta["also_on"]]}
    assert covered == {(t, tp["idx"]) for t, path in paths.items() for tp in path[:-1]}
    assert {r["metadata"]["timeline_id"] for r in records} >= {"main"}


def test_branching_writes_every_other_branch_as_counterfactual_records(castaway):
    """counterfactual.jsonl: one record per timepoint of every branch but main, with its branch, branch
    point, parent and interventions; at the fork the prompt says what the parent did instead."""
    db = _db(castaway)
    records = _records(castaway, "counterfactual.jsonl")
    _valid("counterfactual", records)
    timelines = {r["timeline_id"]: r for r in db.execute("SELECT * FROM timelines")}
    tps = {r["timepoint_id"]: r for r in db.execute("SELECT * FROM timepoints")}
    assert {r["metadata"]["timepoint_id"] for r in records} == \
        {t for t, tp in tps.items() if tp["timeline_id"] != "main"}
    for rec in records:
        meta, answer = rec["metadata"], json.loads(rec["completion"])
        tp, timeline = tps[meta["timepoint_id"]], timelines[meta["timeline_id"]]
        assert tp["timeline_id"] == meta["timeline_id"] != "main"
        assert (meta["parent_timeline_id"], meta["branch_point"]) == (timeline["parent_timeline_id"],
                                                                      timeline["branch_point"])
        assert meta["interventions"] == json.loads(tp["metadata"])["interventions"]
        assert answer["event"] == tp["event"] and tp["event"] not in rec["prompt"]
        assert meta["fork"] == (tp["causal_parent"] == timeline["branch_point"])
        if meta["fork"]:
            instead = next(t for t in tps.values() if t["timeline_id"] == timeline["parent_timeline_id"]
                           and t["causal_parent"] == timeline["branch_point"])
            assert instead["event"] in rec["prompt"]
        for intervention in meta["interventions"]:
            assert intervention in rec["prompt"]
    assert any(r["metadata"]["interventions"] for r in records)


def test_branching_training_records_say_which_branch_they_are_on(castaway):
    for rec in _records(castaway, "training.jsonl"):
        position = rec["metadata"]["position"]
        assert position["mode"] == "branching" and position["branch"] == "main"
        assert "BRANCHING: this is branch main" in "\n".join(_section(rec["prompt"], "MODE"))


def test_no_backward_or_counterfactual_file_outside_their_modes(mars, castaway):
    assert not (mars.run_dir / "counterfactual.jsonl").exists()
    assert not (castaway.run_dir / "backward.jsonl").exists()
