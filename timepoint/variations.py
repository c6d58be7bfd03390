"""Scenario variations (reference §9): one template, many distinct and reproducible casts.

`variations=NAME variations.index=I` rewrites the template before the run from the seed and the
index alone, so `-m variations=personalities variations.index=range(0,10)` makes ten casts and any
one of them can be made again. Each strategy moves one thing, within the documented range:

- personalities: each entity's Big Five = what its traits imply ± U(magnitude), in [0, 1];
- knowledge: each entity keeps a random subset of its initial knowledge (each item with
  probability 1 − magnitude, at least one), so who knows what differs;
- relationships: every pair's trust = 0.5 ± U(magnitude), in [0, 1];
- outcomes: decision parameters — risk 0.5 ± magnitude, confidence 0.8 ± magnitude/2,
  patience 50 ± 50·magnitude, social 0.8 ± magnitude — clamped to their ranges;
- starting_conditions: energy 80 ± 60·magnitude (in [20, 100]), valence ± magnitude,
  arousal 0.3 ± magnitude, health 1 − U(0, magnitude/2), pain U(0, magnitude·0.3).
"""

from __future__ import annotations

import itertools
import random

from .config import VariationsConfig
from .numeric import clamp
from .scenario import BIG_FIVE, Body, RosterRelationship, StartingState, Template
from .world import behavior_from_traits


def _bounded(x: float, lo: float, hi: float) -> float:
    """Within the documented range, at the 4 places the template's numbers carry."""
    return round(clamp(x, lo, hi), 4)


def _personalities(t: Template, rng: random.Random, m: float) -> Template:
    cast = [e.model_copy(update={"temperament": {
        dim: _bounded(base + rng.uniform(-m, m), 0, 1)
        for dim, base in zip(BIG_FIVE, behavior_from_traits(e.personality_traits))}}) for e in t.entities]
    return t.model_copy(update={"entities": cast})


def _knowledge(t: Template, rng: random.Random, m: float) -> Template:
    cast = []
    for e in t.entities:
        kept = [k for k in e.initial_knowledge if rng.random() >= m]
        if e.initial_knowledge and not kept:
            kept = [rng.choice(e.initial_knowledge)]
        cast.append(e.model_copy(update={"initial_knowledge": kept}))
    return t.model_copy(update={"entities": cast})


def _relationships(t: Template, rng: random.Random, m: float) -> Template:
    declared = {tuple(sorted((r.a, r.b))): r for r in t.relationships}
    pairs = itertools.combinations(sorted(e.id for e in t.entities), 2)
    rels = [RosterRelationship(a=a, b=b, type=declared[(a, b)].type if (a, b) in declared else "neutral",
                               trust=_bounded(0.5 + rng.uniform(-m, m), 0, 1)) for a, b in pairs]
    return t.model_copy(update={"relationships": rels})


def _outcomes(t: Template, rng: random.Random, m: float) -> Template:
    def start(e):
        given = e.start.model_dump(exclude_none=True) if e.start else {}
        return StartingState(**{**given, "risk": _bounded(0.5 + rng.uniform(-m, m), 0, 1),
                                "confidence": _bounded(0.8 + rng.uniform(-m / 2, m / 2), 0, 1),
                                "patience": _bounded(50 + rng.uniform(-50 * m, 50 * m), 0, 100),
                                "social": _bounded(0.8 + rng.uniform(-m, m), 0, 1)})
    return t.model_copy(update={"entities": [e.model_copy(update={"start": start(e)}) for e in t.entities]})


def _starting_conditions(t: Template, rng: random.Random, m: float) -> Template:
    def vary(e):
        given = e.start.model_dump(exclude_none=True) if e.start else {}
        start = StartingState(**{**given, "energy": _bounded(80 + rng.uniform(-60 * m, 60 * m), 20, 100),
                                 "valence": _bounded(rng.uniform(-m, m), -1, 1),
                                 "arousal": _bounded(0.3 + rng.uniform(-m, m), 0, 1)})
        body = (e.body or Body()).model_copy(update={"health": _bounded(1 - rng.uniform(0, m / 2), 0, 1),
                                                     "pain": _bounded(rng.uniform(0, m * 0.3), 0, 1)})
        return e.model_copy(update={"start": start, "body": body})
    return t.model_copy(update={"entities": [vary(e) for e in t.entities]})


STRATEGIES = {"personalities": _personalities, "knowledge": _knowledge, "relationships": _relationships,
              "outcomes": _outcomes, "starting_conditions": _starting_conditions}


def vary(template: Template, variation: VariationsConfig, seed: int) -> Template:
    """The template as variation `index` of `strategy` makes it; `none` leaves it as it is."""
    if variation.strategy == "none":
        return template
    rng = random.Random(f"{seed}:{variation.strategy}:{variation.index}")
    varied = STRATEGIES[variation.strategy](template, rng, variation.magnitude)
    return varied.model_copy(update={"world_id": f"{template.world_id}_var_{variation.index}"})
