"""M8 embodied states: the body bends the mind.

Pain and fever reshape an entity's cognitive state before it speaks (what age forbids a body to
do is M4's). The formulas are the reference's (plus a fever's drain on energy); cognitive units are
`CognitiveState`'s (valence −1..1, energy and patience in points (defaults 100 and 50), the rest
0..1). No model calls.

The body weighs on the mind as a load, not a blow: each timepoint the load last applied is lifted
and the present body's load is applied to what is beneath, so a constant pain holds the mood down
without pressing it lower every timepoint, and the load lifts when the pain goes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..numeric import clamp
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
FEVER_ENERGY = 0.8
"""A fever leaves 80% of one's energy (this module's addition: the reference's fever touches only
confidence, risk and sociability)."""

INF = float("inf")
RANGES = {"energy": (0.0, INF), "patience": (0.0, INF), "confidence": (0.0, 1.0), "valence": (-1.0, 1.0),
          "risk": (0.0, 1.0), "social": (0.0, 1.0)}


def load(phys: PhysicalState) -> tuple[dict[str, float], dict[str, float]]:
    """What this body does to the mind: factors (energy, confidence) and offsets (the rest).

    Pain p: energy ×(1 − 0.5p), patience −40p, confidence ×(1 − 0.2p), valence −0.3p.
    Fever > 38.5 °C: confidence ×0.7, risk +0.2, social −0.4, energy ×0.8.
    """
    p = phys.pain
    factors = {"energy": 1 - 0.5 * p, "confidence": 1 - 0.2 * p}
    offsets = {"patience": -PATIENCE_PER_PAIN * p, "valence": -0.3 * p, "risk": 0.0, "social": 0.0}
    if phys.fever > FEVER_THRESHOLD:
        factors["confidence"] *= 0.7
        factors["energy"] *= FEVER_ENERGY
        offsets["risk"] += 0.2
        offsets["social"] -= 0.4
    return factors, offsets


def energy_factor(phys: PhysicalState) -> float:
    """The share of full energy this body allows (what rest can restore, with M14)."""
    return load(phys)[0]["energy"]


def embodied(cog: CognitiveState, phys: PhysicalState) -> CognitiveState:
    """The cognitive state as this body lets it be: `load` applied to `cog`, clamped to
    `CognitiveState`'s ranges. Apply it to the state beneath the body's effects (`unburdened`):
    applied to a state it already weighs on, it compounds."""
    factors, offsets = load(phys)
    update = {f: clamp(getattr(cog, f) * k, *RANGES[f]) for f, k in factors.items()}
    update |= {f: clamp(getattr(cog, f) + d, *RANGES[f]) for f, d in offsets.items()}
    return cog.model_copy(update=update)


def unburdened(cog: CognitiveState, applied: dict) -> CognitiveState:
    """The state beneath a load as it was applied (`at_timepoint` records it): factors divided out,
    offsets taken back."""
    update = {f: clamp(getattr(cog, f) / k, *RANGES[f]) for f, k in applied.get("factor", {}).items() if k > 0}
    update |= {f: clamp(getattr(cog, f) - d, *RANGES[f]) for f, d in applied.get("offset", {}).items()}
    return cog.model_copy(update=update)


def carried(sim: Simulation, entity_id: str) -> dict:
    """The load last applied to this entity (`{}`: none), from the timepoints it lived through."""
    for t in reversed(sim.timepoints):
        applied = t.metadata.get("embodied")
        if isinstance(applied, dict) and entity_id in applied:
            return applied[entity_id]
    return {}


def at_timepoint(sim: Simulation, tp: Timepoint) -> bool:
    """Pain and fever weigh on the mind of everyone present who has them: the load applied before is
    lifted and the present body's applied, so the weight holds without compounding. What was
    applied (factors, and offsets as clamped) is kept in `tp.metadata["embodied"]`; `{}` marks a
    load lifted."""
    applied: dict[str, dict] = {}
    for eid in tp.entities_present:
        e = sim.entities[eid]
        before = carried(sim, eid)
        suffering = e.physical.pain > 0 or e.physical.fever > FEVER_THRESHOLD
        if not before and not suffering:
            continue
        raw = unburdened(e.cognitive, before)
        if not suffering:
            e.cognitive, applied[eid] = raw, {}
            continue
        e.cognitive = embodied(raw, e.physical)
        factors, offsets = load(e.physical)
        applied[eid] = {"factor": factors,
                        "offset": {f: getattr(e.cognitive, f) - getattr(raw, f) for f in offsets}}
    if applied:
        tp.metadata["embodied"] = applied
    return bool(applied)
