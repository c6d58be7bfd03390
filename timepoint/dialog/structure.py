"""The shape of a dialog before it starts: how long, who may stay silent, how it tends to end (§5.1)."""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass

from ..config import DialogConfig
from ..numeric import clamp
from ..world import Entity, Turn


@dataclass(frozen=True)
class Structure:
    min_turns: int
    max_turns: int
    silent: tuple[str, ...]
    ending: str


def turn_bounds(participants: int, high_conflict: bool, cfg: DialogConfig) -> tuple[int, int]:
    """6 + n turns, 3 more in high conflict, as the range [max(6, base−2), min(16, base+3)],
    clipped to the configured min and max."""
    base = 6 + participants + (3 if high_conflict else 0)
    lo, hi = max(6, base - 2), min(16, base + 3)
    lo = clamp(lo, cfg.min_turns, cfg.max_turns)
    return lo, clamp(hi, lo, cfg.max_turns)


def plan_structure(entities: list[Entity], cfg: DialogConfig) -> Structure:
    """High conflict is mean arousal > 0.6 with mean valence < −0.1. With more than three people,
    the least outgoing (extraversion < 0.4) may stay silent. The ending follows the room's mood."""
    valence = statistics.fmean(e.cognitive.valence for e in entities)
    arousal = statistics.fmean(e.cognitive.arousal for e in entities)
    lo, hi = turn_bounds(len(entities), arousal > 0.6 and valence < -0.1, cfg)
    quiet = sorted((e for e in entities if e.tensor.behavior[2] < 0.4), key=lambda e: e.tensor.behavior[2])
    silent = tuple(e.id for e in quiet[:1]) if len(entities) > 3 else ()
    ending = "unresolved_tension" if valence < -0.3 else "interrupted" if arousal > 0.7 else "natural_pause"
    return Structure(lo, hi, silent, ending)


def steering_calls(turns: float, horizon: int) -> float:
    """Steering calls of a dialog of `turns` turns when nothing is rejected and no one falls silent: one per
    plan of `horizon` turns, whose last says whether to end. At horizon 1 a decision names the next
    speaker or ends the dialog instead, so a dialog steering ends costs one call more."""
    return turns + 1 if horizon == 1 else math.ceil(turns / horizon)


def fallback_speaker(rng: random.Random, participants: list[str], turns: list[Turn], barred: set[str]) -> str:
    """Anyone but the last speaker or the barred, favouring those who have spoken least."""
    last = turns[-1].speaker if turns else None
    candidates = [p for p in participants if p != last and p not in barred] or \
        [p for p in participants if p != last] or participants
    spoken = {p: sum(t.speaker == p for t in turns) for p in candidates}
    return rng.choices(candidates, weights=[1 / (1 + spoken[p]) for p in candidates])[0]
