"""M6 LLM-guided tensor population: the model reads each character and nudges the temperament the
trait words gave them, so two "analytical" people need not share a behaviour vector.

One call per entity at scene set-up rates every behaviour dimension against the baseline in words
(a grammar can bound an enum, not a float); the words are multipliers, the result clipped to [0, 1].
Exact zeros left in biology or behaviour are lifted to a small floor so compression sees signal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, create_model

from ..concurrency import gather_all
from ..numeric import clamp
from ..world import TTMTensor

if TYPE_CHECKING:
    from ..simulation import Simulation
    from ..world import Entity

ID = "M6"

DIMENSIONS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism", "risk_tolerance",
              "decision_speed", "reserve")
MULTIPLIER = {"much lower": 0.5, "lower": 0.75, "as given": 1.0, "higher": 1.25, "much higher": 1.5}
ZERO_FLOOR = 0.05

Reading: type[BaseModel] = create_model(
    "TemperamentReading",
    **{d: (Literal[tuple(MULTIPLIER)], Field(description=f"{d.replace('_', ' ')} compared with the baseline"))
       for d in DIMENSIONS})


def adjusted(tensor: TTMTensor, reading: BaseModel) -> TTMTensor:
    """Behaviour × the read multipliers, clipped to [0, 1]; zeros in biology and behaviour lifted."""
    behavior = [clamp(round(v * MULTIPLIER[getattr(reading, d)], 4), 0.0, 1.0)
                for v, d in zip(tensor.behavior, DIMENSIONS)]
    lift = [v if v != 0 else ZERO_FLOOR for v in behavior]
    biology = [v if v != 0 else ZERO_FLOOR for v in tensor.biology]
    return tensor.model_copy(update={"behavior": lift, "biology": biology})


async def _read(sim: Simulation, e: Entity) -> BaseModel:
    baseline = ", ".join(f"{d.replace('_', ' ')} {v:.2f}" for d, v in zip(DIMENSIONS, e.tensor.behavior))
    return await sim.gateway.structured("scene", [
        {"role": "system", "content": "You read characters for a simulation. For each temperament dimension, "
                                      "say how this person compares with the baseline given. Answer in JSON."},
        {"role": "user", "content": f"Premise: {sim.template.premise}\n\n{e.name}, {e.title}. {e.description}\n"
                                    f"Traits: {', '.join(e.traits)}\nBaseline (0-1): {baseline}"},
    ], Reading, temperature=0.3)


async def populate(sim: Simulation) -> None:
    entities = list(sim.entities.values())
    readings = await gather_all(*(sim.attempt(f"M6 reading ({e.id})", _read(sim, e)) for e in entities))
    read = [(e, reading) for e, reading in zip(entities, readings) if reading is not None]
    for e, reading in read:  # an entity whose reading failed keeps the temperament its traits gave it
        e.tensor = adjusted(e.tensor, reading)
    sim.store.save_entities(entities)
    if read:
        sim.fire(ID, "population")
