"""State units and conversions of the world model (reference §2)."""

from datetime import datetime

import pytest

from timepoint.world import (
    CognitiveState,
    PhysicalState,
    advance,
    alignment,
    baseline_tensor,
    behavior_from_traits,
    cognitive_from_tensor,
    tensor_with_cognitive,
)


def test_tensor_to_cognitive_uses_the_documented_scales():
    t = baseline_tensor("human", PhysicalState(age=40), [])
    t = t.model_copy(update={"context": [0.3, 0.25, 0.6, 0.72, 0.9, 0.4, 0.1, 0.7]})
    c = cognitive_from_tensor(t)
    assert c.valence == pytest.approx(-0.5)
    assert c.energy == pytest.approx(72)
    assert c.patience == pytest.approx(40)
    assert (c.arousal, c.confidence, c.risk, c.social) == (0.6, 0.9, 0.1, 0.7)


def test_cognitive_to_tensor_round_trips_and_sets_knowledge_level():
    t = baseline_tensor("human", PhysicalState(), [])
    c = CognitiveState(valence=-0.2, arousal=0.8, energy=64, confidence=0.3, patience=70, risk=0.9, social=0.2)
    back = tensor_with_cognitive(t, c, knowledge_count=4)
    assert back.context[0] == 0.4
    assert cognitive_from_tensor(back).model_dump() == pytest.approx(c.model_dump())


def test_energy_above_scale_is_clamped_in_the_tensor():
    t = baseline_tensor("human", PhysicalState(), [])
    back = tensor_with_cognitive(t, CognitiveState(energy=130), knowledge_count=25)
    assert back.context[3] == 1.0 and back.context[0] == 1.0


def test_biology_vector_for_humans_and_others():
    p = PhysicalState(age=60, health=0.7, pain=0.25, stamina=0.5)
    assert baseline_tensor("human", p, []).biology == [0.6, 0.7, 0.75, 0.5]
    assert baseline_tensor("kami", p, []).biology == [0.5, 0.5, 0.5, 0.5]


def test_traits_move_the_behavior_vector():
    b = behavior_from_traits(["Anxious", "reserved", "cautious"])
    assert b[4] > 0.7 and b[7] > 0.7 and b[5] < 0.3
    assert behavior_from_traits([]) == [0.5] * 8
    assert behavior_from_traits(["unheard-of"]) == [0.5] * 8


def test_advance_is_calendar_aware():
    start = datetime(2026, 11, 15, 9, 0)
    assert advance(start, "month", 3) == datetime(2027, 2, 15, 9, 0)
    assert advance(start, "quarter", 1) == datetime(2027, 2, 15, 9, 0)
    assert advance(start, "year", 5) == datetime(2031, 11, 15, 9, 0)
    assert advance(start, "hour", 30) == datetime(2026, 11, 16, 15, 0)


def test_month_steps_keep_the_start_day_where_the_month_has_it():
    march_30 = datetime(2026, 3, 30, 9, 0)
    assert advance(march_30, "month", 0) == march_30
    assert [advance(march_30, "month", k) for k in (1, 2)] == [datetime(2026, 4, 30, 9, 0), datetime(2026, 5, 30, 9, 0)]
    assert advance(march_30, "quarter", 1) == datetime(2026, 6, 30, 9, 0)
    # Each step counts from the start, so the 31st comes back after a short month.
    jan_31 = datetime(2028, 1, 31)
    assert [advance(jan_31, "month", k).day for k in range(5)] == [31, 29, 31, 30, 31]
    assert advance(datetime(2027, 1, 31), "month", 1) == datetime(2027, 2, 28)
    assert advance(jan_31, "month", -2) == datetime(2027, 11, 30)
    assert advance(datetime(2028, 2, 29), "year", 1) == datetime(2029, 2, 28)


def test_alignment_is_shared_over_union():
    assert alignment({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3, abs=1e-4)
    assert alignment(set(), set()) == 0.0


def test_spoken_line_drops_name_prefix_and_run_on():
    from timepoint.dialog.graph import spoken_line
    names = ["Priya Raman", "Dale Kowalski"]
    assert spoken_line("Dale Kowalski:  We re-run it.\nPriya Raman: No time.", names) == "We re-run it."
    assert spoken_line("  Fine.\n\nBy five.  ", names) == "Fine. By five."
