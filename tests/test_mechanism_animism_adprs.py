"""M16 animism, M9 on-demand entities, and ADPRS shadow evaluation, gating and fitting (pure functions)."""

from __future__ import annotations

import math
from typing import get_args

import pytest

from timepoint.adprs import Envelope
from timepoint.mechanisms import animism, on_demand, shadow
from timepoint.scenario import EntityType, RosterEntity
from timepoint.world import CognitiveState

# --- M16 animism -----------------------------------------------------------------------------------


@pytest.mark.parametrize("entity_type, threshold", [
    ("human", 0), ("animal", 1), ("building", 2), ("object", 2), ("abstract", 3),
    ("any", 4), ("kami", 4), ("ai", 4),
    ("Person", 0), ("creature", 1), ("vehicle", 2), ("concept", 3), ("dragon", 4),
])
def test_dialog_admission_thresholds(entity_type, threshold):
    assert animism.may_speak(entity_type, threshold)
    assert animism.may_speak(entity_type, 6)  # the highest level a template may set
    if threshold > 0:
        assert not animism.may_speak(entity_type, threshold - 1)


def test_speaking_modes():
    modes = {t: animism.speaking_mode(t) for t in get_args(EntityType)}
    assert modes == {
        "human": "speech", "ai": "speech",
        "animal": "behavioural narration",
        "building": "environmental narration", "object": "environmental narration",
        "abstract": "collective consciousness", "kami": "collective consciousness", "any": "collective consciousness",
    }




# --- M9 on-demand entities -------------------------------------------------------------------------


@pytest.mark.parametrize("text, refs", [
    ("attendee #47 raised a hand", ["attendee_47"]),
    ("Attendee # 47", ["attendee_47"]),
    ("guest #3 left", ["attendee_3"]),  # the # form is always an attendee
    ("person12 and Person 12 and PERSON12", ["person_12"]),
    ("Guest 3, visitor 5, spectator 9, member 2, participant 4",
     ["guest_3", "visitor_5", "spectator_9", "member_2", "participant_4"]),
    ("participant 4 then guest 03 then participant 4", ["participant_4", "guest_3"]),
    ("attendee 7", ["attendee_7"]),
])
def test_numbered_references(text, refs):
    assert on_demand.numbered_references(text) == refs


@pytest.mark.parametrize("text", [
    "2024 members voted",  # the number must follow the word
    "members 2 and 3",  # plural is not a reference
    "the salesperson 3 metres away",
    "person12b",
    "issue #47 is closed",
    "personnel 5",
    "a guest arrived",
])
def test_numbered_references_no_false_positives(text):
    assert on_demand.numbered_references(text) == []


def test_background_entity_is_a_valid_roster_entry():
    fields = on_demand.background_entity("guest_3", "The Board Meeting")
    assert fields == {
        "id": "guest_3", "name": "Guest 3", "type": "human", "role": "background",
        "initial_knowledge": ["Present at The Board Meeting"],
    }
    assert RosterEntity(**fields).display_name == "Guest 3"
    assert on_demand.ID == "M9"


# --- ADPRS shadow ----------------------------------------------------------------------------------


def test_activation_extremes():
    assert shadow.activation(CognitiveState(valence=-1, arousal=0, energy=0)) == 0.0
    assert shadow.activation(CognitiveState(valence=1, arousal=1, energy=100)) == pytest.approx(1.0)
    assert shadow.activation(CognitiveState(valence=1, arousal=1, energy=400)) == 1.0  # clamped
    assert shadow.activation(CognitiveState()) == pytest.approx(0.2 + 0.105 + 0.25)


def test_shadow_evaluation_numbers():
    report = shadow.evaluate([
        ("a", "t1", 0.75, "dialog"),  # dialog vs dialog: 0
        ("b", "t1", 0.15, "graph"),  # tensor_only vs graph: −2
        ("c", "t1", 0.95, "scene"),  # trained vs scene: +3
        ("d", "t2", 0.85, "full_detail"),  # trained vs full_detail (= trained): 0
    ])
    assert [row["divergence"] for row in report["rows"]] == [0, -2, 3, 0]
    assert [row["continuous_divergence"] for row in report["rows"]] == pytest.approx([0.05, -0.35, 0.65, -0.05])
    assert report["rows"][1]["predicted_band"] == "tensor_only"
    assert report["total_evaluations"] == 4
    assert report["divergent_count"] == 2
    assert report["divergence_rate_pct"] == 50.0
    assert report["mean_divergence"] == 1.25
    assert report["max_divergence"] == 3


def test_shadow_evaluation_empty():
    assert shadow.evaluate([]) == {
        "total_evaluations": 0, "divergent_count": 0, "divergence_rate_pct": 0.0,
        "mean_divergence": 0.0, "max_divergence": 0, "rows": [],
    }


@pytest.mark.parametrize("phis, admitted", [
    ({"a": 0.1, "b": 0.05}, []),  # all tensor
    ({}, []),
    ({"a": 0.7, "b": 0.3}, []),  # one dialog + one scene
    ({"a": 0.7, "b": 0.75, "c": 0.1}, ["a", "b"]),  # two dialog + one tensor
    ({"a": 0.5, "b": 0.9, "c": 0.3}, ["a", "b"]),  # graph and trained speak, scene does not
])
def test_gate(phis, admitted):
    assert shadow.gate(phis) == admitted


def test_phi_at_tau_matches_adprs_phi():
    env = Envelope()
    assert shadow.phi_at_tau(env, 0.0) == pytest.approx((1 - env.S) * env.baseline)
    assert shadow.phi_at_tau(env, 0.125) == pytest.approx(env.S * 0.875 ** 0.9 + 0.2 * 0.1)
    assert shadow.phi_at_tau(env, 1.0) == pytest.approx((1 - env.S) * env.baseline)


KNOWN = Envelope(A=0.6, P=1.5, S=0.7, baseline=0.2)
POINTS = [shadow.phi_at_tau(KNOWN, shadow.tau_at(i, 12)) for i in range(12)]


def fitted_curve(env: Envelope) -> list[float]:
    return [shadow.phi_at_tau(env, shadow.tau_at(i, 12)) for i in range(12)]


def test_fit_recovers_known_curve_and_is_deterministic():
    env, mse = shadow.fit_envelope(POINTS)
    assert mse < 1e-3
    assert fitted_curve(env) == pytest.approx(POINTS, abs=0.05)
    assert (env.D, env.R, env.t0) == (KNOWN.D, 0.0, KNOWN.t0)
    assert shadow.fit_envelope(POINTS) == (env, mse)


def test_fit_warm_start_from_prior():
    prior = Envelope(A=0.55, P=1.4, S=0.75, baseline=0.15)
    env, mse = shadow.fit_envelope(POINTS, prior=prior)
    assert mse < 1e-3


def test_fit_warm_start_falls_back_to_cold_start(monkeypatch):
    def failing_curve_fit(*args, **kwargs):
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr("scipy.optimize.curve_fit", failing_curve_fit)  # shadow imports it when it fits
    assert shadow.fit_envelope(POINTS, prior=KNOWN) == shadow.fit_envelope(POINTS)


def test_fit_needs_five_points():
    env, mse = shadow.fit_envelope([0.1, 0.5, 0.9, 0.4])
    assert env == Envelope() and (env.A, env.P, env.S, env.baseline) == (0.7, 2.0, 0.8, 0.1)
    assert math.isnan(mse)
