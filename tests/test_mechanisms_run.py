"""Mechanisms as plugins, seen from a run: each enabled one leaves its effects and usage rows, and
turning it off removes both."""

from __future__ import annotations

import json
import sqlite3

import pytest
import yaml

from timepoint.mechanisms import MECHANISMS
from timepoint.paths import TEMPLATES_DIR
from timepoint.world import behavior_from_traits

PLUGIN_MARKS = {"M1": "centrality", "M10": "atmosphere", "M14": "circadian", "M8": "embodied"}


@pytest.fixture(scope="module")
def ailing_board(tmp_path_factory):
    """board_meeting with a CEO in pain, a feverish CFO, a dog that may not speak at animism 0, a
    director whose waveform keeps her silent, a toddler lifting a projector, and numbered guests."""
    raw = yaml.safe_load((TEMPLATES_DIR / "board_meeting.yaml").read_text())
    cast = raw["entities"]
    cast[0]["body"] = {"pain": 0.8}
    cast[1]["body"] = {"fever": 39.4}
    cast[2]["adprs"] = {"t0": "2099-01-01T00:00:00", "baseline": 0.05}   # not yet active: tensor band
    cast.append({"id": "biscuit", "name": "Biscuit", "type": "animal", "role": "background",
                 "description": "The office dog, asleep under the table.", "personality_traits": ["calm"],
                 "initial_knowledge": ["The room smells of coffee."], "goals": ["Sleep."]})
    cast.append({"id": "tommy", "name": "Tommy Brennan", "age": 3, "role": "background",
                 "description": "Nadia's son, brought along for lack of a sitter.", "personality_traits": ["curious"],
                 "initial_knowledge": ["Mum is in a meeting."], "goals": ["Play."]})
    raw["scene"]["opening_event"] += (" Guest 3 and attendee #47 wait by the door with coffee."
                                      " Tommy lifts the projector off its stand.")
    raw["resources"] = {"cash": {"unit": "million USD", "initial": 5, "rate": -2, "critical_threshold": 2, "min": 0,
                                 "trigger_event": "The bank balance drops below two million."}}
    raw.update(animism_level=0, timepoints=3)
    path = tmp_path_factory.mktemp("tpl") / "ailing_board.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def enabled_all_but(*off: str) -> str:
    return "mechanisms.enabled=[" + ",".join(m for m in MECHANISMS if m not in off) + "]"


def facts(result) -> dict:
    db = sqlite3.connect(result.run_dir / "run.db")
    usage = {m for (m,) in db.execute("SELECT DISTINCT mechanism FROM mechanism_usage")}
    metadata = [json.loads(m or "{}") for (m,) in db.execute(
        "SELECT metadata FROM timepoints WHERE timeline_id='main' ORDER BY idx")]
    speakers = {s for (s,) in db.execute("SELECT DISTINCT speaker FROM turns")}
    participants = {p for (ps,) in db.execute("SELECT participants FROM dialogs") for p in json.loads(ps)}
    energy = {e: json.loads(c)["energy"] for e, c in db.execute("SELECT entity_id, cognitive FROM entities")}
    resolutions = {r for (r,) in db.execute("SELECT DISTINCT resolution FROM entity_states")}
    validations = {(v, e) for v, e in db.execute("SELECT validator, entity_id FROM validations")}
    matured = [m for (m,) in db.execute("SELECT maturity FROM entities") if m is not None]
    read = {e: (json.loads(t)["behavior"], behavior_from_traits(json.loads(tr)))
            for e, t, tr in db.execute("SELECT entity_id, tensor, traits FROM entities")}
    first_present = json.loads(db.execute("SELECT entities_present FROM timepoints WHERE timepoint_id='tp_000'")
                               .fetchone()[0])
    return {"usage": usage, "metadata": metadata, "speakers": speakers, "participants": participants,
            "energy": energy, "resolutions": resolutions, "entities": set(energy), "first_present": first_present,
            "validations": validations, "matured": matured, "read": read}


@pytest.fixture(scope="module")
def everything(ailing_board, tmp_path_factory):
    import os
    import subprocess
    import sys

    from conftest import RunResult
    tmp = tmp_path_factory.mktemp("all")
    proc = subprocess.run([sys.executable, "-m", "timepoint", "model=test", f"template={ailing_board}",
                           f"hydra.run.dir={tmp / 'run'}"], capture_output=True, text=True, cwd=tmp,
                          env={**os.environ, "TIMEPOINT_HOME": str(tmp / "home")}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return RunResult(0, proc.stdout, proc.stderr, tmp / "run")


def test_every_plugin_leaves_its_mark_when_enabled(everything):
    f = facts(everything)
    for mechanism, key in PLUGIN_MARKS.items():
        assert mechanism in f["usage"]
        assert any(key in m for m in f["metadata"]), mechanism
    assert {"M16", "M18"} <= f["usage"]
    assert "biscuit" not in f["participants"]            # M16: animism 0 admits humans only
    assert "evelyn_cho" not in f["participants"]         # ADPRS: tensor band keeps her out of dialogs
    assert {"guest_3", "attendee_47"} <= f["entities"] & set(f["first_present"])   # M9: made on demand
    assert ("biological_constraints", "tommy") in f["validations"]                 # M4: a 3-year-old lifting
    assert len(f["matured"]) == len(f["entities"]) and all(0 <= m <= 1 for m in f["matured"])   # M6
    assert [m["resources"]["cash"] for m in f["metadata"]] == [5, 3, 1]                 # M4: resources move
    assert [m.get("resource_alerts") for m in f["metadata"]] == [None, None, ["The bank balance drops below two "
                                                                              "million."]]
    assert not {"guest_3", "attendee_47"} & f["participants"]
    present = sum("evelyn_cho" in json.loads(p) for (p,) in sqlite3.connect(everything.run_dir / "run.db").execute(
        "SELECT entities_present FROM timepoints WHERE timeline_id='main'"))
    report = json.loads((everything.run_dir / "shadow_report.json").read_text())
    assert report["total_evaluations"] == present >= 1
    table = sqlite3.connect(everything.run_dir / "run.db").execute(
        "SELECT entity_id, predicted_band FROM shadow_evaluations").fetchall()
    assert table == [("evelyn_cho", "tensor_only")] * present
    summary = everything.summary["mechanisms"]
    assert summary["enabled"] == list(MECHANISMS) and set(summary["fired"]) == f["usage"] & set(MECHANISMS)
    assert f"mechanisms fired: {len(summary['fired'])} of 19 enabled" in everything.stdout


@pytest.mark.parametrize("mechanism", ["M1", "M4", "M6", "M8", "M9", "M10", "M14", "M16"])
def test_turning_a_mechanism_off_removes_its_effects_and_usage(timepoint, ailing_board, everything, mechanism):
    result = timepoint("model=test", f"template={ailing_board}", enabled_all_but(mechanism))
    assert result.code == 0, result.stderr
    on, off = facts(everything), facts(result)
    assert mechanism not in off["usage"]
    if mechanism in PLUGIN_MARKS:
        assert not any(PLUGIN_MARKS[mechanism] in m for m in off["metadata"])
    if mechanism == "M1":
        assert off["resolutions"] == {"dialog"} != on["resolutions"]
    if mechanism in ("M8", "M14"):
        assert off["energy"] != on["energy"]
    if mechanism == "M4":
        assert off["validations"] == set() and not any("resources" in m for m in off["metadata"])
    if mechanism == "M6":
        assert off["matured"] == []
        assert all(behavior == from_traits for behavior, from_traits in off["read"].values())
        assert any(behavior != from_traits for behavior, from_traits in on["read"].values())   # the model's reading
        assert all(0 <= v <= 1 for behavior, _ in on["read"].values() for v in behavior)
    if mechanism == "M9":
        assert not {"guest_3", "attendee_47"} & off["entities"]
    if mechanism == "M16":
        assert "biscuit" in off["participants"] or "biscuit" not in on["participants"]


def test_mechanism_presets_compose(timepoint):
    result = timepoint("model=test", "mechanisms=minimal")
    assert result.code == 0, result.stderr
    assert set(result.summary["mechanisms"]["fired"]) <= {"M3", "M7", "M11", "M17", "M18", "M19"}
    assert result.summary["mechanisms"]["enabled"] == ["M3", "M7", "M11", "M17", "M18", "M19"]


def test_activation_trajectories_are_fitted_once_there_are_five_points(timepoint):
    result = timepoint("model=test", "template=hound_shadow_directorial", "mode.steps=6")
    assert result.code == 0, result.stderr
    fits = json.loads((result.run_dir / "shadow_report.json").read_text())["fits"]
    assert set(fits) == {e["entity_id"] for e in result.store().rows("entities")}
    for fit in fits.values():
        assert fit["points"] == 6 and 0 <= fit["mse"] < 0.05
        assert 0 <= fit["A"] <= 1 and 0.5 <= fit["P"] <= 8 and 0 <= fit["S"] <= 1
