"""Hard budgets are never crossed; soft budgets warn and go on."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from timepoint.concurrency import gather_all
from timepoint.config import BudgetConfig, ModelCard
from timepoint.errors import BudgetExhausted
from timepoint.llm import Budget, ModelGateway, ResponseCache
from timepoint.llm.gateway import price
from timepoint.llm.request import Completion


class Line(BaseModel):
    content: str = Field(max_length=60)


def card(price_in: float, price_out: float) -> ModelCard:
    return ModelCard(name="priced", provider="test", model_id="priced-1", license="MIT", training_safe=True,
                     context_length=100_000, max_output=4096, price_in=price_in, price_out=price_out,
                     structured_output="native", max_concurrency=4)


class Billing:
    """Answers with usage drawn from the call's own worst case, billing as the scenario says."""

    def __init__(self, card: ModelCard, usages: list[tuple[float, float]], overcharge: float | None):
        self.card, self.usages, self.overcharge = card, usages, overcharge

    async def complete(self, request):
        frac_in, frac_out = self.usages.pop(0) if self.usages else (1.0, 1.0)
        t_in = int(frac_in * (request.prompt_chars() // 2 + 1))
        t_out = int(frac_out * request.max_tokens)
        cost = price(self.card, t_in, t_out) * self.overcharge if self.overcharge else None
        return Completion('{"content": "ok"}', t_in, t_out, cost)

    async def close(self):
        return None


def run_until_stopped(c: ModelCard, cap: BudgetConfig, usages, prompts: list[int], overcharge=None) -> Budget:
    budget = Budget(cap)
    with tempfile.TemporaryDirectory() as tmp:
        gw = ModelGateway({"dialog": [c]}, ResponseCache(Path(tmp) / "c.db"), "off", budget, 1, lambda _: None,
                          providers={c.name: Billing(c, list(usages), overcharge)})

        async def go():
            for n, size in enumerate(prompts):
                msgs = [{"role": "user", "content": f"{n} " + "x" * size}]
                try:
                    await gw.structured("dialog", msgs, Line, max_tokens=50 + size % 400)
                except BudgetExhausted:
                    return
        asyncio.run(go())
    return budget


@settings(max_examples=60, deadline=None)
@given(price_in=st.floats(0, 50), price_out=st.floats(0, 100), cap=st.floats(0, 0.05),
       max_calls=st.one_of(st.none(), st.integers(0, 20)), max_tokens=st.one_of(st.none(), st.integers(0, 20_000)),
       usages=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), max_size=30),
       prompts=st.lists(st.integers(1, 3000), min_size=1, max_size=30))
def test_hard_budget_is_never_exceeded(price_in, price_out, cap, max_calls, max_tokens, usages, prompts):
    config = BudgetConfig(kind="hard", max_cost_usd=cap, max_calls=max_calls, max_tokens=max_tokens)
    budget = run_until_stopped(card(price_in, price_out), config, usages, prompts)
    assert budget.cost_usd <= cap + 1e-12
    assert max_calls is None or budget.calls <= max_calls
    assert max_tokens is None or budget.tokens <= max_tokens


class Slow(Billing):
    """Bills like Billing, after a delay, so many calls are in flight at once."""

    def __init__(self, card, usages, delays: list[float]):
        super().__init__(card, usages, None)
        self.delays, self.started = delays, 0

    async def complete(self, request):
        self.started += 1
        await asyncio.sleep(self.delays[self.started % len(self.delays)])
        return await super().complete(request)


def spend_concurrently(c: ModelCard, cap: BudgetConfig, usages, prompts: list[int], delays: list[float]):
    """Fire every call at once through one gateway, as a mode's concurrent candidates do."""
    budget = Budget(cap)
    provider = Slow(c, list(usages), delays)
    with tempfile.TemporaryDirectory() as tmp:
        gw = ModelGateway({"dialog": [c]}, ResponseCache(Path(tmp) / "c.db"), "off", budget, 1, lambda _: None,
                          providers={c.name: provider}, max_concurrency=16)

        async def go():
            calls = [gw.structured("dialog", [{"role": "user", "content": f"{n} " + "x" * size}], Line,
                                   max_tokens=50 + size % 400) for n, size in enumerate(prompts)]
            try:
                await gather_all(*calls)
            except BudgetExhausted:
                pass
        asyncio.run(go())
    return budget, provider


@settings(max_examples=40, deadline=None)
@given(price_in=st.floats(0.1, 50), price_out=st.floats(0.1, 100), cap=st.floats(0.0001, 0.02),
       usages=st.lists(st.tuples(st.floats(0.5, 1), st.floats(0.5, 1)), max_size=40),
       prompts=st.lists(st.integers(1, 3000), min_size=2, max_size=40),
       delays=st.lists(st.floats(0, 0.005), min_size=1, max_size=5))
def test_concurrent_calls_never_spend_past_a_hard_cap(price_in, price_out, cap, usages, prompts, delays):
    c = card(price_in, price_out).model_copy(update={"max_concurrency": 16})
    budget, _ = spend_concurrently(c, BudgetConfig(kind="hard", max_cost_usd=cap), usages, prompts, delays)
    assert budget.cost_usd <= cap + 1e-12


def test_calls_still_waiting_are_cancelled_when_the_budget_is_spent():
    c = card(1.0, 1.0)  # max_concurrency 4: most calls wait for a slot; each call costs about $0.001
    cap = BudgetConfig(kind="hard", max_cost_usd=0.01)
    budget, provider = spend_concurrently(c, cap, [], [2000] * 40, [0.01])
    assert 0 < budget.calls < 40 and provider.started < 40   # the rest never reached the provider
    assert budget.cost_usd <= 0.01
    assert budget._in_flight == 0 and budget._reserved.cost == pytest.approx(0.0)  # every reservation settled


def test_a_provider_billing_above_card_prices_tightens_later_admissions():
    c = card(1.0, 1.0)
    budget = run_until_stopped(c, BudgetConfig(kind="hard", max_cost_usd=1.0), [], [100], overcharge=3.0)
    assert budget.price_factor == pytest.approx(3.0)
    with pytest.raises(BudgetExhausted):
        budget.admit(worst_cost=0.4, worst_tokens=0)  # 0.4 at card price is 1.2 as billed
    budget.admit(worst_cost=0.3, worst_tokens=0)


def test_soft_budget_warns_once_and_goes_on(caplog):
    c = card(1000.0, 1000.0)
    with caplog.at_level(logging.WARNING):
        budget = run_until_stopped(c, BudgetConfig(kind="soft", max_cost_usd=0.0001), [], [200] * 5)
    assert budget.calls == 5 and budget.cost_usd > 0.0001
    assert sum("soft budget" in r.message for r in caplog.records) == 1
