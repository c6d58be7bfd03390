"""Judging causal links: how plausible it is that one situation led to another.

Ratings are words, not floats: a grammar can enforce an enum but not a numeric range."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, create_model

from ..dialog.prompts import spoken_time
from ..llm.schema_cache import cached_schema
from ..simulation import Simulation

RATING = {"implausible": 0.1, "doubtful": 0.35, "plausible": 0.65, "compelling": 0.9}
WEIGHTS = {"overall": 0.3, "historical": 0.2, "causal": 0.3, "capability": 0.2}  # sums to 1 (reference: 1.1)


class Rating(BaseModel):
    overall: Literal[tuple(RATING)]
    historical: Literal[tuple(RATING)]
    causal: Literal[tuple(RATING)]
    capability: Literal[tuple(RATING)]


@cached_schema
def ranking_schema(count: int) -> type[BaseModel]:
    return create_model("CandidateRanking",
                        scores=(list[Literal[tuple(RATING)]], Field(min_length=count, max_length=count)))


def brief(sim: Simulation) -> str:
    """The premise and the cast: every generating prompt of every mode starts from this."""
    cast = "\n".join(f"- {e.id}: {e.name}, {e.title} ({e.role}). {e.description}" for e in sim.entities.values())
    return f"Premise: {sim.template.premise}\nCast:\n{cast}"


async def rate_link(sim: Simulation, earlier: tuple[datetime, str], later: tuple[datetime, str], link: str) -> float:
    """One judge call: overall plausibility, fit with the period, causal strength and capability, weighted."""
    rating = await sim.gateway.structured("judge", [
        {"role": "system", "content": "You rate causal links in a social simulation: overall plausibility, "
                                      "fit with the period, causal strength, and whether the people could "
                                      "do it. Answer in JSON."},
        {"role": "user", "content": f"{brief(sim)}\n\nEarlier ({spoken_time(earlier[0])}): {earlier[1]}"
                                    f"\nLater ({spoken_time(later[0])}): {later[1]}\nClaimed link: {link}"},
    ], Rating, temperature=0.3)
    return weighted(rating)


def weighted(rating: Rating) -> float:
    return round(sum(WEIGHTS[k] * RATING[getattr(rating, k)] for k in WEIGHTS), 4)
