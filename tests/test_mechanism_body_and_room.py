"""M1 fidelity, M8 embodiment, M10 atmosphere and M14 circadian: the formulas at their boundaries."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from timepoint.mechanisms import atmosphere as m10
from timepoint.mechanisms import circadian as m14
from timepoint.mechanisms import embodiment as m8
from timepoint.mechanisms import fidelity as m1
from timepoint.world import CognitiveState, PhysicalState, Relationship


def test_mechanism_ids():
    assert (m1.ID, m8.ID, m10.ID, m14.ID) == ("M1", "M8", "M10", "M14")


# --- M1 fidelity -------------------------------------------------------------------------------

def test_edge_weights_follow_relationship_type():
    rels = [Relationship(a="b", b="a", type="ally", trust=0.1), Relationship(a="a", b="c", type="enemy"),
            Relationship(a="a", b="a", type="family")]
    assert m1.relationship_edges(rels) == {("a", "b"): 0.9, ("a", "c"): 0.1}
    assert m1.edge_weight("mentor") == 0.85
    assert m1.edge_weight("nemesis") == 0.5


def test_copresence_edges_and_merge_keeps_larger_weight():
    co = m1.copresence_edges(["c", "a", "b", "a"])
    assert co == {("a", "b"): 0.4, ("a", "c"): 0.4, ("b", "c"): 0.4}
    merged = m1.merge_edges({("a", "b"): 0.9, ("a", "c"): 0.1}, co)
    assert merged == {("a", "b"): 0.9, ("a", "c"): 0.4, ("b", "c"): 0.4}


def test_star_graph_hub_is_most_central_with_unit_norm():
    edges = {("hub", leaf): 0.7 for leaf in "abcd"}
    c = m1.centrality(["hub", *"abcd"], edges)
    assert c["hub"] == pytest.approx(1 / math.sqrt(2), abs=1e-5)
    assert all(c[leaf] == pytest.approx(1 / math.sqrt(8), abs=1e-5) for leaf in "abcd")
    assert math.fsum(v * v for v in c.values()) == pytest.approx(1)


def test_centrality_matches_leading_eigenvector_of_connected_graph():
    edges = {("a", "b"): 0.9, ("b", "c"): 0.4, ("c", "d"): 0.1, ("a", "c"): 0.5, ("d", "e"): 0.8}
    c = m1.centrality(list("abcde"), edges)
    adjacency = np.zeros((5, 5))
    for (x, y), w in edges.items():
        adjacency["abcde".index(x), "abcde".index(y)] = adjacency["abcde".index(y), "abcde".index(x)] = w
    vector = np.abs(np.linalg.eigh(adjacency)[1][:, -1])
    assert [c[n] for n in "abcde"] == pytest.approx(list(vector), abs=1e-4)


def test_centrality_without_edges_falls_back_to_degree():
    assert m1.centrality([], {}) == {}
    assert m1.centrality(["solo"], {}) == {"solo": 1.0}
    assert m1.centrality(["a", "b", "c"], {}) == {"a": 0.0, "b": 0.0, "c": 0.0}


def test_centrality_that_does_not_converge_falls_back_to_degree():
    # Two separate pairs with nearly equal weights: the power iteration is still drifting after 100 steps.
    c = m1.centrality(list("abcd"), {("a", "b"): 1.0, ("c", "d"): 0.98})
    assert c == pytest.approx(dict.fromkeys("abcd", 1 / 3))


def test_centrality_adds_nodes_named_only_by_edges():
    assert set(m1.centrality(["a"], {("a", "b"): 0.5})) == {"a", "b"}


@pytest.mark.parametrize(("role", "c", "level"), [
    ("primary", 0.5, "dialog"), ("primary", 0.5001, "trained"),
    ("secondary", 0.3, "graph"), ("secondary", 0.3001, "dialog"),
    ("background", 1.0, "scene"), ("environment", 1.0, "tensor_only"),
])
def test_resolution_thresholds_are_strict(role, c, level):
    assert m1.resolution_for(role, c) == level


def test_unknown_role_is_refused():
    with pytest.raises(ValueError):
        m1.resolution_for("extra", 0.9)


# --- M8 embodiment -----------------------------------------------------------------------------

BASE = CognitiveState(valence=0.2, arousal=0.4, energy=100, confidence=0.8, patience=50, risk=0.5, social=0.8)


def test_no_pain_no_fever_changes_nothing():
    assert m8.embodied(BASE, PhysicalState(pain=0, fever=38.5)) == BASE


def test_full_pain():
    out = m8.embodied(BASE, PhysicalState(pain=1))
    assert out.energy == pytest.approx(50)
    assert out.patience == pytest.approx(10)
    assert out.confidence == pytest.approx(0.64)
    assert out.valence == pytest.approx(-0.1)
    assert (out.arousal, out.risk, out.social) == (0.4, 0.5, 0.8)


def test_fever_just_above_threshold():
    out = m8.embodied(BASE, PhysicalState(fever=38.6))
    assert out.confidence == pytest.approx(0.56)
    assert out.risk == pytest.approx(0.7)
    assert out.social == pytest.approx(0.4)


def test_embodiment_clamps():
    low = CognitiveState(valence=-0.9, patience=10, risk=0.95, social=0.1)
    out = m8.embodied(low, PhysicalState(pain=1, fever=40))
    assert (out.valence, out.patience, out.risk, out.social) == (-1, 0, 1, 0)


@given(
    cog=st.builds(CognitiveState, valence=st.floats(-1, 1), arousal=st.floats(0, 1), energy=st.floats(0, 200),
                  confidence=st.floats(0, 1), patience=st.floats(0, 200), risk=st.floats(0, 1),
                  social=st.floats(0, 1)),
    phys=st.builds(PhysicalState, pain=st.floats(0, 1), fever=st.floats(0, 43)),
)
def test_embodied_stays_in_range_and_never_helps(cog, phys):
    out = m8.embodied(cog, phys)
    CognitiveState.model_validate(out.model_dump())
    assert out.energy <= cog.energy and out.patience <= cog.patience and out.valence <= cog.valence
    assert out.confidence <= cog.confidence and out.social <= cog.social and out.risk >= cog.risk


# --- M10 atmosphere ----------------------------------------------------------------------------

@pytest.mark.parametrize(("location", "value"), [
    ("Great Hall", 0.9), ("Senate Chamber", 0.9), ("the Palace of Versailles", 0.9), ("Inns of Court", 0.9),
    ("US Senate", 0.7), ("General Assembly", 0.7), ("Congress", 0.7),
    ("The Prancing Pony Inn", 0.2), ("Baker Street", 0.2), ("Taverns", 0.2), ("home", 0.2),
    ("Courtyard", 0.5), ("Dinner room", 0.5), ("Mission control", 0.5), ("", 0.5),
])
def test_formality_keywords(location, value):
    assert m10.formality(location) == value


def test_tension():
    assert m10.tension([]) == 0.3
    assert m10.tension([0.3, 0.9]) == 0.0
    assert m10.tension([0.29, 0.9]) == pytest.approx(0.75)
    assert m10.tension([0.1, 0.2, 0.9]) == 1.0


def test_cohesion_density_noise_bounds():
    assert m10.cohesion(1.0, 0.9) == 0.0
    assert m10.cohesion(0.3, 0.5) == pytest.approx(0.55)
    assert m10.density(5, 10) == 0.5
    assert m10.density(12, 10) == 1.2
    assert m10.density(4, None) == 0.4
    assert m10.density(20, None) == 1.0
    assert m10.noise(1.2, 1.0) == 1.0
    assert m10.noise(0.5, 0.2) == pytest.approx(0.5)


def test_moods():
    assert [m10.mood(v, a) for v, a in [(0.5, 0.5), (0.5, 0.3), (-0.5, 0.5), (-0.5, 0.1), (0.3, 0.9)]] == \
        ["excited", "content", "angry", "sad", "neutral"]
    angry, calm = CognitiveState(valence=-0.5, arousal=0.8), CognitiveState(valence=0.5, arousal=0.1)
    assert m10.prevailing_mood([angry, calm]) == "angry"
    assert m10.prevailing_mood([angry, calm, calm]) == "content"
    assert m10.prevailing_mood([]) == "neutral"


def test_atmosphere_of_a_lively_tavern():
    s = CognitiveState(valence=0.5, arousal=0.6, energy=80)
    a = m10.atmosphere([s, s], [0.8], "The Green Dragon Tavern", capacity=4)
    assert (a.valence, a.arousal, a.energy) == pytest.approx((0.5, 0.6, 0.8))
    assert (a.tension, a.formality, a.density, a.mood) == (0.0, 0.2, 0.5, "excited")
    assert a.cohesion == pytest.approx(0.94)
    assert a.noise == pytest.approx(0.9)


def test_atmosphere_of_an_empty_room():
    a = m10.atmosphere([], [], "Great Hall")
    assert (a.valence, a.energy, a.tension, a.density, a.noise, a.mood) == (0, 0, 0.3, 0, 0, "neutral")


@given(
    states=st.lists(st.builds(CognitiveState, valence=st.floats(-1, 1), arousal=st.floats(0, 1)), max_size=30),
    trusts=st.lists(st.floats(0, 1), max_size=40),
    location=st.text(max_size=30),
    capacity=st.none() | st.integers(0, 50),
)
def test_atmosphere_stays_in_range(states, trusts, location, capacity):
    a = m10.atmosphere(states, trusts, location, capacity)
    assert 0 <= a.tension <= 1 and 0 <= a.cohesion <= 1 and 0 <= a.noise <= 1 and a.density >= 0
    assert -1 <= a.valence <= 1 and a.formality in (0.2, 0.5, 0.7, 0.9)


# --- M14 circadian -----------------------------------------------------------------------------

@pytest.mark.parametrize(("activity", "hour", "p"), [
    ("work", 8, 0.8), ("work", 16, 0.8), ("work", 16.99, 0.8), ("work", 7, 0.4), ("work", 17, 0.4),
    ("work", 18, 0.05), ("work", 3, 0.05),
    ("sleep", 22, 0.9), ("sleep", 23, 0.9), ("sleep", 0, 0.9), ("sleep", 24, 0.9), ("sleep", 4, 0.9),
    ("sleep", 21, 0.45), ("sleep", 5, 0.45), ("sleep", 6, 0.05), ("sleep", 12, 0.05),
    ("meal", 12, 0.7), ("meal", 13, 0.35), ("meal", 15, 0.05),
    ("juggling", 12, 0.1),
])
def test_activity_probability(activity, hour, p):
    assert m14.activity_probability(activity, hour) == pytest.approx(p)


def test_custom_schedule():
    night_shift = {"work": m14.Activity(0.7, ((20, 4),))}
    assert m14.activity_probability("work", 2, night_shift) == 0.7
    assert m14.activity_probability("work", 10, night_shift) == 0.05
    assert m14.activity_probability("sleep", 2, night_shift) == 0.1


def test_hours_awake_and_fatigue():
    assert [m14.hours_awake(h) for h in (6, 22, 2, 5.5)] == [0, 16, 20, 23.5]
    assert m14.fatigue(16) == 1.0
    assert m14.fatigue(24) == pytest.approx(1.25)
    assert m14.fatigue(32) == pytest.approx(1.5)


def test_energy_cost_night_penalty_edges():
    assert m14.energy_cost(10, 21 + 59 / 60, 0) == 10
    assert m14.energy_cost(10, 22, 0) == 15
    assert m14.energy_cost(10, 5.99, 0) == 15
    assert m14.energy_cost(10, 6, 0) == 10
    assert m14.energy_cost(10, 23, 32) == pytest.approx(22.5)


def test_plausibility_thresholds():
    assert [m14.plausibility(p) for p in (0.0499, 0.05, 0.0999, 0.1, 0.9)] == \
        ["invalid", "warning", "warning", "ok", "ok"]
