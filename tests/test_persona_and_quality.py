"""Pure parts of the dialog engine: persona formulas and clamps, φ, structure, surface heuristics,
voice distinctiveness and the per-turn gate."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from timepoint.adprs import Envelope, band, phi
from timepoint.config import DialogConfig
from timepoint.dialog.graph import _degenerate_turn, _hedged
from timepoint.dialog.persona import persona_params
from timepoint.dialog.quality import is_strict_round_robin, surface_quality, voice_distinctiveness
from timepoint.dialog.structure import turn_bounds
from timepoint.world import Turn

NEUTRAL = [0.5] * 8


def test_persona_temperature_follows_arousal_and_energy_within_clamps():
    assert persona_params(0.0, 0, NEUTRAL, 0, 10).temperature == 0.3          # 0.294 clamped up
    assert persona_params(1.0, 100, NEUTRAL, 0, 10).temperature == pytest.approx(0.84)
    assert persona_params(1.0, 400, NEUTRAL, 0, 10).temperature == 1.2        # energy above scale clamps
    calm, agitated = persona_params(0.2, 80, NEUTRAL, 0, 10), persona_params(0.9, 80, NEUTRAL, 0, 10)
    assert agitated.temperature > calm.temperature and agitated.top_p < calm.top_p


def test_persona_top_p_and_max_tokens():
    assert persona_params(0.0, 50, NEUTRAL, 0, 10).top_p == 0.98              # 1.0 clamped down
    assert persona_params(1.0, 50, NEUTRAL, 0, 10).top_p == 0.75
    assert persona_params(0.5, 100, NEUTRAL, 0, 10).max_tokens == 350
    assert persona_params(0.5, 100, NEUTRAL, 10, 10).max_tokens == 210         # shorter late in the dialog
    assert persona_params(0.5, 0, NEUTRAL, 10, 10).max_tokens == 84
    assert persona_params(0.5, 0, NEUTRAL, 10, 10, phi=0.0).max_tokens == 50   # 50.4 → floor, clamp 50


def test_persona_penalties_come_from_openness_and_risk_tolerance():
    p = persona_params(0.5, 50, NEUTRAL, 0, 10)
    assert (p.frequency_penalty, p.presence_penalty) == (0.5, 0.3)             # the reference defaults
    high = persona_params(0.5, 50, [1.0, 0, 0, 0, 0, 1.0, 0, 0], 0, 10)
    assert (high.frequency_penalty, high.presence_penalty) == (0.8, 0.6)       # clamps
    low = persona_params(0.5, 50, [0.0] * 8, 0, 10)
    assert (low.frequency_penalty, low.presence_penalty) == (0.0, 0.0)


def test_adprs_phase_scales_persona():
    base = persona_params(0.8, 90, NEUTRAL, 2, 10)
    assert persona_params(0.8, 90, NEUTRAL, 2, 10, phi=1.0) == base
    low = persona_params(0.8, 90, NEUTRAL, 2, 10, phi=0.0)
    assert low.temperature == pytest.approx(max(0.3, base.temperature * 0.6), abs=1e-4)
    assert low.top_p == pytest.approx(max(0.7, base.top_p * 0.8), abs=1e-4)


def test_phi_waveform_and_bands():
    env = Envelope(A=0.5, D=1000 * 3600 * 24 * 100, P=2, S=0.8, t0=datetime(2026, 1, 1), baseline=0.1)
    assert phi(env, datetime(2025, 12, 31)) == 0.1                               # before t0
    assert phi(env, datetime(2026, 1, 1) + timedelta(days=101)) == 0.1           # after D
    quarter = datetime(2026, 1, 1) + timedelta(days=12.5)                        # τ = 0.125: sin(π/2) = 1
    assert phi(env, quarter) == pytest.approx(0.875 ** 1.5 * 0.8 + 0.2 * 0.1)
    early, late = phi(env, datetime(2026, 1, 13, 12)), phi(env, datetime(2026, 3, 28, 12))
    assert early > late
    assert [band(x) for x in (0.1, 0.3, 0.5, 0.7, 0.9)] == ["tensor_only", "scene", "graph", "dialog", "trained"]


def test_turn_bounds_follow_the_reference_and_the_config():
    wide = DialogConfig(min_turns=2, max_turns=20, max_participants=6)
    assert turn_bounds(2, False, wide) == (6, 11)
    assert turn_bounds(4, True, wide) == (11, 16)
    assert turn_bounds(4, False, DialogConfig(min_turns=4, max_turns=10, max_participants=4)) == (8, 10)


def turns(*spec: tuple[str, str]) -> list[Turn]:
    return [Turn(index=i, speaker=s, content=c) for i, (s, c) in enumerate(spec)]


GOOD = turns(
    ("ana", "The reading is 847 ppm, six percent over spec, and it has climbed every hour since the crew "
            "swapped the cartridge at midnight, which nobody logged."),
    ("ben", "Run it again."),
    ("ana", "I ran it three times on two sensors, and the backup unit reads 851, so this is not calibration "
            "drift, whatever the console says."),
    ("cy", "Then why did nobody flag it?"),
    ("ben", "Scrub."),
    ("ana", "Scrubbing costs us the launch window until March, and the board will want a cause we can name "
            "before they approve a second attempt."),
)


def test_a_varied_dialog_passes_every_surface_check():
    q = surface_quality(GOOD)
    assert q.failed == [] and q.score == 1.0 and q.passed


@pytest.mark.parametrize("check,dialog", [
    ("hedging_openers", turns(("a", "Well, I think so."), ("b", "I understand, but no."), ("a", "Honestly, fine."),
                              ("b", "Sure thing, we go at dawn with the whole crew and the spare tanks."))),
    ("not_round_robin", turns(("a", "One."), ("b", "Two words."), ("c", "Three words here."),
                              ("a", "Four."), ("b", "Five now."), ("c", "Six at last."))),
    ("length_variation", turns(("a", "We go at dawn."), ("b", "They wait for us."), ("a", "The tanks are full."),
                               ("b", "The crew is ready."))),
    ("low_consensus", turns(("a", "I agree with that plan."), ("b", "Exactly, you're right."),
                            ("a", "Good point about the tanks, it makes sense to me and to the whole crew now."))),
    ("speaker_length_spread", turns(("a", "We go at dawn, the two of us."), ("b", "No, at noon then."),
                                    ("a", "Dawn."), ("b", "Noon, and that is final for everyone."))),
])
def test_each_surface_check_fails_on_its_own_pattern(check, dialog):
    q = surface_quality(dialog)
    assert not q.checks[check]
    assert q.score == sum(q.checks.values()) / 5


def test_round_robin_needs_three_speakers():
    two = turns(("a", "x"), ("b", "y"), ("a", "z"), ("b", "w"))
    assert not is_strict_round_robin(two)
    assert is_strict_round_robin(turns(*[(s, "x") for s in "abcabc"]))


def test_voice_distinctiveness_separates_distinct_voices_from_clones():
    clones = turns(*[(s, "I think we should consider the options carefully together.") for s in "abab"])
    assert voice_distinctiveness(GOOD) > voice_distinctiveness(clones) + 0.3
    assert 0 <= voice_distinctiveness(clones) <= voice_distinctiveness(GOOD) <= 1


def test_the_gate_rejects_a_repeated_line_and_a_second_hedge():
    repeated = turns(("a", "We scrub the EVA."), ("b", "No."), ("a", "We scrub the EVA!"))
    assert _degenerate_turn(repeated, [], []).startswith("repeat")
    hedged = turns(("a", "Well, maybe."), ("b", "No."), ("a", "I think we wait."))
    assert "hedge" in _hedged(hedged)
    one_hedge = turns(("a", "No, we go now."), ("b", "Well, maybe."))
    assert _degenerate_turn(one_hedge, [], []) is None and _hedged(one_hedge) is None
