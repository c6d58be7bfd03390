"""M8 embodied states: the body bends the mind.

Pain and fever reshape an entity's cognitive state before it speaks, and age caps what the body
can do. The formulas are the reference's; cognitive units are `CognitiveState`'s (valence −1..1,
energy and patience in points (defaults 100 and 50), the rest 0..1). No model calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..world import CognitiveState, PhysicalState

if TYPE_CHECKING:
    from ..simulation import Simulation
    from ..world import Timepoint

ID = "M8"

FEVER_THRESHOLD = 38.5
"""°C; a fever strictly above this affects the mind (non-humans carry fever 0)."""

# Patience lives on 0..100 here but on 0..1 in the tensor the reference's −0.4·pain applies to,
# so the drop is 40 points per unit of pain.
PATIENCE_PER_PAIN = 40.0


def _clamp(x: float, lo: float, hi: float = float("inf")) -> float:
    return max(lo, min(hi, x))


def embodied(cog: CognitiveState, phys: PhysicalState) -> CognitiveState:
    """The cognitive state as this body lets it be.

    Pain p: energy ×(1 − 0.5p), patience −40p, confidence ×(1 − 0.2p), valence −0.3p.
    Fever > 38.5 °C: confidence ×0.7, risk +0.2, social −0.4. Results are clamped to
    `CognitiveState`'s ranges. Apply it once, to the state before the body's effects:
    applying it again compounds them.
    """
    p = phys.pain
    energy = cog.energy * (1 - 0.5 * p)
    patience = cog.patience - PATIENCE_PER_PAIN * p
    confidence = cog.confidence * (1 - 0.2 * p)
    valence = cog.valence - 0.3 * p
    risk, social = cog.risk, cog.social
    if phys.fever > FEVER_THRESHOLD:
        confidence *= 0.7
        risk += 0.2
        social -= 0.4
    return cog.model_copy(update={
        "energy": _clamp(energy, 0), "patience": _clamp(patience, 0), "confidence": _clamp(confidence, 0, 1),
        "valence": _clamp(valence, -1, 1), "risk": _clamp(risk, 0, 1), "social": _clamp(social, 0, 1),
    })


def capacities(age: float) -> dict[str, float]:
    """What an age leaves of the body's capacities: each is 1.0 up to its threshold age, then
    declines linearly to a floor (recovery hyperbolically, without a floor).

    stamina from 25 to a floor of .3, vision from 20 to .4, hearing from 30 to .5,
    recovery 1/(1 + (age − 30)·.05) from 30, cognitive speed from 30 to .5.
    """
    def past(threshold: float) -> float:
        return max(0.0, age - threshold)

    return {
        "stamina": max(0.3, 1 - past(25) * 0.01),
        "vision": max(0.4, 1 - past(20) * 0.015),
        "hearing": max(0.5, 1 - past(30) * 0.01),
        "recovery": 1 / (1 + past(30) * 0.05),
        "cognitive_speed": max(0.5, 1 - past(30) * 0.008),
    }


def at_timepoint(sim: Simulation, tp: Timepoint) -> bool:
    """Pain and fever weigh on the mind of everyone present who has them, once per timepoint
    they live through: a long night in pain wears a person down."""
    suffering = [sim.entities[eid] for eid in tp.entities_present
                 if sim.entities[eid].physical.pain > 0 or sim.entities[eid].physical.fever > FEVER_THRESHOLD]
    for e in suffering:
        e.cognitive = embodied(e.cognitive, e.physical)
    if suffering:
        tp.metadata["embodied"] = [e.id for e in suffering]
    return bool(suffering)
