"""M4 constraint validators and QSE resources, M6 tensor compression and maturity: at their boundaries."""

import math
from datetime import datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from timepoint.mechanisms import compression as m6
from timepoint.mechanisms import constraints as m4
from timepoint.scenario import Resource
from timepoint.world import PhysicalState, Timepoint, TTMTensor


def test_mechanism_ids():
    assert (m4.ID, m6.ID) == ("M4", "M6")


# --- M4 validators ---------------------------------------------------------------------------------

def test_information_conservation():
    exposed = {"ada": {"the vault is open", "the guard sleeps"}}
    assert m4.information_conservation({"ada": {"the vault is open"}}, exposed) == []
    [v] = m4.information_conservation({"ada": {"the vault is open", "the code is 1234"}, "bo": set()}, exposed)
    assert (v.validator, v.severity, v.entity_id) == ("information_conservation", "error", "ada")
    assert "the code is 1234" in v.message
    [v] = m4.information_conservation({"cy": {"anything"}}, exposed)
    assert v.entity_id == "cy"


def test_behavioral_inertia_drift_boundary():
    before = {"ada": [0.5] * 8}
    assert m4.behavioral_inertia(before, {"ada": [1.5] + [0.5] * 7}) == []  # drift exactly 1.0
    [v] = m4.behavioral_inertia(before, {"ada": [1.51] + [0.5] * 7})
    assert (v.validator, v.severity, v.entity_id) == ("behavioral_inertia", "warning", "ada")
    # 0.6 and 0.8 on two dimensions: L2 is exactly 1.0, not the 1.4 a sum would give.
    assert m4.behavioral_inertia(before, {"ada": [1.1, 1.3] + [0.5] * 6}) == []
    assert m4.behavioral_inertia(before, {"bo": [0.0] * 8}) == []


def test_biological_constraints_age_rules():
    bodies = {"kid": PhysicalState(age=4), "five": PhysicalState(age=5), "ninety": PhysicalState(age=90),
              "old": PhysicalState(age=91), "teen": PhysicalState(age=15), "tower": PhysicalState(age=100, mobility=0)}
    assert m4.biological_constraints(bodies, {"five": "climbs the wall", "ninety": "lifting the crate",
                                              "old": "discusses the runway", "teen": "walks home"}) == []
    violations = m4.biological_constraints(bodies, {"kid": "runs to the door", "old": "fighting off the thief",
                                                    "teen": "driving the truck", "tower": "walks away"})
    assert {v.entity_id for v in violations} == {"kid", "old", "teen", "tower"}
    assert all((v.validator, v.severity) == ("biological_constraints", "error") for v in violations)


def test_biological_constraints_resource_bounds():
    specs = {"oxygen": Resource(unit="kg", initial=84, min=0, max=210)}
    assert m4.biological_constraints({}, {}, {"oxygen": 0.0}, specs) == []
    assert m4.biological_constraints({}, {}, {"oxygen": 210.0}, specs) == []
    [v] = m4.biological_constraints({}, {}, {"oxygen": -0.5}, specs)
    assert v.entity_id is None and "oxygen" in v.message
    assert len(m4.biological_constraints({}, {}, {"oxygen": 210.5}, specs)) == 1


def test_network_flow():
    neighbours = {"ada": {"bo"}}
    ok = {"ada": [("the vault", "bo"), ("a hunch", "ada"), ("Experienced: storm", "experience"),
                  ("the layout", "scene_initialization")]}
    assert m4.network_flow(ok, neighbours) == []
    [v] = m4.network_flow({"ada": [("the vault", "bo"), ("the code", "cy")]}, neighbours)
    assert (v.validator, v.severity, v.entity_id) == ("network_flow", "warning", "ada")
    assert "cy" in v.message
    assert m4.network_flow({"ada": [("a change", "intervention")]}, neighbours,
                           m4.SETUP_SOURCES | {"intervention"}) == []


def _tp(tp_id: str, hour: int, parent: str | None = None) -> Timepoint:
    return Timepoint(id=tp_id, index=hour, timestamp=datetime(2030, 1, 1) + timedelta(hours=hour),
                     event=f"event {tp_id}", entities_present=["ada"], causal_parent=parent)


def test_temporal_causality():
    assert m4.temporal_causality([_tp("a", 0), _tp("b", 1, "a"), _tp("c", 2, "b")]) == []
    [v] = m4.temporal_causality([_tp("a", 0), _tp("b", 1, "ghost")])
    assert (v.validator, v.severity, v.timepoint_id) == ("temporal_causality", "error", "b")
    assert "does not exist" in v.message
    [v] = m4.temporal_causality([_tp("a", 2), _tp("b", 1, "a")])
    assert v.timepoint_id == "b" and "not after" in v.message
    assert len(m4.temporal_causality([_tp("a", 1), _tp("b", 1, "a")])) == 1  # simultaneous is not earlier
    cyclic = m4.temporal_causality([_tp("a", 0, "c"), _tp("b", 1, "a"), _tp("c", 2, "b"), _tp("d", 3, "c")])
    loops = [v for v in cyclic if "cycle" in v.message]
    assert len(loops) == 1 and "a, b, c" in loops[0].message


# --- M4 QSE resources --------------------------------------------------------------------------------

def test_parse_rate():
    assert m4.parse_rate("6_crew * 0.84_kg_per_hour") == pytest.approx(-5.04)
    assert m4.parse_rate(-16.0) == -16.0
    assert m4.parse_rate(2.5) == 2.5
    with pytest.raises(ValueError):
        m4.parse_rate("crew * 0.84_kg")


def test_step_resources_clamps_and_triggers_once():
    specs = {"oxygen": Resource(unit="kg", initial=84, rate=-16, critical_threshold=32, min=0, max=210,
                                trigger_event="ORRIN cuts cabin oxygen"),
             "cash": Resource(unit="usd", initial=100, rate=50, max=120)}
    values = {"oxygen": 84.0, "cash": 100.0}
    events_seen = []
    for _ in range(8):
        values, events = m4.step_resources(values, specs, present=9)
        events_seen += events
        assert 0 <= values["oxygen"] <= 210 and values["cash"] <= 120
    assert events_seen == ["ORRIN cuts cabin oxygen"]  # 84 → 68 → 52 → 36 → 20: crossed once
    assert values == {"oxygen": 0.0, "cash": 120.0}

    # Landing exactly on the threshold is a crossing; a modifier moves the value too.
    values, events = m4.step_resources({"oxygen": 48.0}, specs, present=9)
    assert values["oxygen"] == 32.0 and events == ["ORRIN cuts cabin oxygen"]
    values, events = m4.step_resources({"oxygen": 40.0}, specs, present=9, modifiers={"oxygen": 20.0})
    assert values["oxygen"] == 44.0 and events == []
    assert m4.step_resources({}, specs, present=1)[0]["cash"] == 120.0  # starts from `initial`


# --- M6 compression and maturity --------------------------------------------------------------------

def _tensor(rng: np.random.Generator) -> TTMTensor:
    return TTMTensor(context=rng.random(8).tolist(), biology=rng.random(4).tolist(), behavior=rng.random(8).tolist())


@pytest.mark.parametrize("n", [1, 3, 6])
def test_compress_shapes(n):
    rng = np.random.default_rng(n)
    result = m6.compress([_tensor(rng) for _ in range(n)], n_components=3)
    k = min(3, n)
    assert result["n_components"] == k
    for method in ("pca", "svd"):
        codes = np.array(result["codes"][method])
        assert codes.shape == (n, k) and np.all(np.isfinite(codes))
        ratios = result["explained_variance_ratio"][method]
        assert len(ratios) == k and all(r >= 0 for r in ratios)
    assert sum(result["explained_variance_ratio"]["pca"]) <= 1 + 1e-9


def test_compress_edge_cases():
    same = TTMTensor(context=[0.5] * 8, biology=[0.5] * 4, behavior=[0.5] * 8)
    assert m6.compress([same, same])["explained_variance_ratio"]["pca"] == [0.0, 0.0]
    assert m6.compress([])["n_components"] == 0
    with pytest.raises(ValueError):
        m6.compress([same], n_components=0)


def test_maturity_bounds():
    varied = TTMTensor(context=[0.1, 0.9] * 4, biology=[0.1, 0.9] * 2, behavior=[0.1, 0.9] * 4)
    assert m6.maturity(varied, training_cycles=10, training_complete=True) == pytest.approx(1.0)
    assert m6.maturity(varied, training_cycles=10, training_complete=False) == pytest.approx(0.925)
    assert m6.maturity(varied, training_cycles=10, training_complete=True) >= m6.OPERATIONAL
    zero = TTMTensor(context=[0.0] * 8, biology=[0.0] * 4, behavior=[0.0] * 8)
    # Only coherence (in range) and finiteness score.
    assert m6.maturity(zero, training_cycles=0, training_complete=False) == pytest.approx(0.4)
    # Values up to 2 are coherent; each vector beyond costs ×0.8 of the coherence share.
    high = varied.model_copy(update={"context": [1.9, 0.1] * 4})
    assert m6.maturity(high, 10, True) == pytest.approx(1.0)
    wild = varied.model_copy(update={"context": [2.5, 0.1] * 4, "behavior": [-0.1, 0.9] * 4})
    assert m6.maturity(wild, 10, True) == pytest.approx(1.0 - 0.25 * (1 - 0.8 ** 2))
    broken = varied.model_copy(update={"biology": [math.nan, 0.5, 0.5, 0.5]})
    assert m6.maturity(broken, 10, True) < 1.0 - 0.15 + 1e-9


_value = st.floats(allow_nan=True, allow_infinity=True)


@given(context=st.lists(_value, min_size=8, max_size=8), biology=st.lists(_value, min_size=4, max_size=4),
       behavior=st.lists(_value, min_size=8, max_size=8), cycles=st.integers(-5, 50), complete=st.booleans())
def test_maturity_is_a_share(context, biology, behavior, cycles, complete):
    tensor = TTMTensor(context=context, biology=biology, behavior=behavior)
    assert 0.0 <= m6.maturity(tensor, cycles, complete) <= 1.0
