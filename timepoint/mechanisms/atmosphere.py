"""M10 scene atmosphere: the room as the people in it make it.

The mood, energy and tension of a scene are aggregates of who is present: their cognitive
states, the trust between them, the kind of place and how full it is. The formulas are the
reference's. No model calls (the optional narrative of the room is left to the caller).
"""

from __future__ import annotations

import re
from collections import Counter
from itertools import combinations
from statistics import fmean
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from ..world import CognitiveState

if TYPE_CHECKING:
    from ..simulation import Simulation
    from ..world import Timepoint

ID = "M10"

Mood = Literal["excited", "content", "angry", "sad", "neutral"]

# The louder mood carries the room: ties for the prevailing mood go to the earlier one here.
MOOD_PRECEDENCE: tuple[Mood, ...] = ("angry", "excited", "sad", "content", "neutral")

HOSTILE_TRUST = 0.3
"""A pair trusting each other less than this — below a "neutral" tie, so rivals and enemies —
is a negative edge (the same cut the training exporter uses)."""

DEFAULT_TENSION = 0.3
"""Tension when fewer than two are present: there is no pair to read it from."""

DEFAULT_CAPACITY = 10
"""A room of unknown capacity is taken to hold 10, or everyone present if more."""

# Checked in order, so "Senate Chamber" is a chamber (0.9) before it is a senate (0.7).
FORMALITY_KEYWORDS: tuple[tuple[float, tuple[str, ...]], ...] = (
    (0.9, ("hall", "chamber", "court", "palace", "cathedral")),
    (0.7, ("assembly", "congress", "senate")),
    (0.2, ("tavern", "inn", "street", "park", "home")),
)
DEFAULT_FORMALITY = 0.5


class Atmosphere(BaseModel):
    """A scene's atmosphere. valence −1..1; the rest 0..1, except energy and density, which pass
    1 when people are above 100 energy or the room is over capacity."""

    valence: float
    arousal: float
    energy: float
    tension: float
    formality: float
    cohesion: float
    density: float
    mood: Mood
    noise: float
    location: str


def mood(valence: float, arousal: float) -> Mood:
    """One person's (or a room's) mood from valence and arousal."""
    if valence > 0.3:
        return "excited" if arousal > 0.3 else "content"
    if valence < -0.3:
        return "angry" if arousal > 0.3 else "sad"
    return "neutral"


def prevailing_mood(states: list[CognitiveState]) -> Mood:
    """The most common mood among those present; neutral for an empty room."""
    counts = Counter(mood(s.valence, s.arousal) for s in states)
    if not counts:
        return "neutral"
    return max(MOOD_PRECEDENCE, key=lambda m: (counts[m], -MOOD_PRECEDENCE.index(m)))


def tension(trusts: list[float]) -> float:
    """min(1, 1.5 × share of pairs with trust below 0.3); 0.3 when there are no pairs."""
    if not trusts:
        return DEFAULT_TENSION
    return min(1.0, 1.5 * sum(t < HOSTILE_TRUST for t in trusts) / len(trusts))


def formality(location: str) -> float:
    """How formal a place is, from whole words in its name (plurals count: "Inns of Court")."""
    words = set(re.findall(r"[a-z]+", location.lower()))
    words |= {w[:-1] for w in words if w.endswith("s")}
    for value, keywords in FORMALITY_KEYWORDS:
        if words & set(keywords):
            return value
    return DEFAULT_FORMALITY


def cohesion(tension: float, formality: float) -> float:
    """max(0, 1 − tension − 0.3·formality): distrust and ceremony both keep people apart."""
    return max(0.0, 1 - tension - 0.3 * formality)


def density(size: int, capacity: int | None) -> float:
    """size / capacity. Without a (positive) capacity, size / max(size, 10): a small group in an
    unknown room is sparse, a large one fills it."""
    if capacity is None or capacity <= 0:
        capacity = max(size, DEFAULT_CAPACITY)
    return size / capacity


def noise(density: float, excited_share: float) -> float:
    """min(1, 0.8·density + 0.5·share of the excited)."""
    return min(1.0, 0.8 * density + 0.5 * excited_share)


def atmosphere(states: list[CognitiveState], trusts: list[float], location: str,
               capacity: int | None = None) -> Atmosphere:
    """The atmosphere of a scene.

    `states` are the cognitive states of those present; `trusts` has one trust per pair of them.
    Pass a pair with no declared relationship at the default trust 0.5, so it counts as a pair
    that is not hostile (as the training exporter counts it). An empty room is calm: valence,
    arousal, energy and noise 0, mood neutral.
    """
    size = len(states)
    t, f, d = tension(trusts), formality(location), density(size, capacity)
    excited = sum(mood(s.valence, s.arousal) == "excited" for s in states) / size if size else 0.0
    return Atmosphere(
        valence=fmean(s.valence for s in states) if size else 0.0,
        arousal=fmean(s.arousal for s in states) if size else 0.0,
        energy=fmean(s.energy / 100 for s in states) if size else 0.0,
        tension=t, formality=f, cohesion=cohesion(t, f), density=d,
        mood=prevailing_mood(states), noise=noise(d, excited), location=location,
    )


def at_timepoint(sim: Simulation, tp: Timepoint) -> bool:
    """The room's atmosphere from the people in it, recorded on the timepoint for prompts and data."""
    present = [eid for eid in tp.entities_present if eid in sim.entities]
    pairs = [tuple(sorted(p)) for p in combinations(present, 2)]
    trusts = [sim.relationships[p].trust if p in sim.relationships else 0.5 for p in pairs]
    mood_of_room = atmosphere([sim.entities[e].cognitive for e in present], trusts, sim.location,
                              sim.template.scene.capacity)
    tp.metadata["atmosphere"] = mood_of_room.model_dump(mode="json", exclude={"location"})
    return True
