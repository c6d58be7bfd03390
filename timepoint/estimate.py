"""Predict a run's calls, tokens and dollars from its plan, without calling any model."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from .config import ModelCard
from .llm.gateway import price, worst_case_chars

CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class PlannedCall:
    """`count` calls of one kind, each with a prompt of about `prompt_chars` characters; `mechanism`
    is the one that makes them (None: the run itself), so a run without it does not plan them."""

    role: str
    count: float
    prompt_chars: int
    schema: type[BaseModel]
    mechanism: str | None = None


@dataclass
class Estimate:
    calls: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    by_role: dict[str, int]

    def as_dict(self) -> dict:
        return {"calls": self.calls, "tokens": self.tokens_in + self.tokens_out, "tokens_in": self.tokens_in,
                "tokens_out": self.tokens_out, "cost_usd": round(self.cost_usd, 6), "by_role": self.by_role}


def estimate(plan: list[PlannedCall], chains: dict[str, list[ModelCard]]) -> Estimate:
    """Answers are assumed half their schema's longest form; each role is priced on its first model."""
    calls = tokens_in = tokens_out = 0.0
    cost = 0.0
    by_role: dict[str, float] = {}
    for p in plan:
        t_in = p.count * p.prompt_chars / CHARS_PER_TOKEN
        t_out = p.count * worst_case_chars(p.schema.model_json_schema()) / 2 / CHARS_PER_TOKEN
        calls, tokens_in, tokens_out = calls + p.count, tokens_in + t_in, tokens_out + t_out
        cost += price(chains[p.role][0], int(t_in), int(t_out))
        by_role[p.role] = by_role.get(p.role, 0) + p.count
    return Estimate(round(calls), round(tokens_in), round(tokens_out), cost,
                    {role: round(n) for role, n in sorted(by_role.items())})
