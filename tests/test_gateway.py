"""The model gateway: structured answers, repair, cache and replay, hard budgets, the call ledger."""

from __future__ import annotations

import asyncio
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from timepoint.config import BudgetConfig, ModelCard
from timepoint.errors import BudgetExhausted
from timepoint.llm import (
    Budget,
    CallFailed,
    ModelGateway,
    ProviderDown,
    ReplayMiss,
    ResponseCache,
    StructuredOutputError,
)
from timepoint.llm.gateway import token_budget, worst_case_chars
from timepoint.llm.providers.test import TestProvider
from timepoint.llm.request import Completion


class Reply(BaseModel):
    content: str = Field(max_length=80)
    tone: Literal["calm", "tense"]
    tags: list[str] = Field(max_length=2)


CARD = ModelCard(name="scripted", provider="test", model_id="scripted-1", license="MIT", training_safe=True,
                 context_length=4096, max_output=512, price_in=2.0, price_out=8.0, structured_output="native")
MESSAGES = [{"role": "user", "content": "Say something about the quarterly numbers."}]


class Scripted:
    """Answers from a script, counting what it was sent (the gateway's unit under test is the gateway)."""

    def __init__(self, *answers: str):
        self.answers = list(answers)
        self.requests = []

    async def complete(self, request):
        self.requests.append(request)
        answer = self.answers.pop(0)
        return answer if isinstance(answer, Completion) else Completion(text=answer, tokens_in=100, tokens_out=20)

    async def close(self):
        return None


def gateway(tmp_path, provider, *, mode="read_write", budget=None, calls=None):
    calls = [] if calls is None else calls
    return ModelGateway({"dialog": [CARD]}, ResponseCache(tmp_path / "cache.db"), mode,
                        Budget(budget or BudgetConfig(kind="unlimited")), seed=7, on_call=calls.append,
                        providers={CARD.name: provider})


GOOD = '{"content": "Up four percent.", "tone": "calm", "tags": []}'


def test_test_provider_fills_the_schema_deterministically(tmp_path):
    async def ask(seed_messages):
        gw = gateway(tmp_path, TestProvider(CARD), mode="off")
        return await gw.structured("dialog", seed_messages, Reply)
    a, b = asyncio.run(ask(MESSAGES)), asyncio.run(ask(MESSAGES))
    assert isinstance(a, Reply) and a == b and len(a.content) <= 80
    other = asyncio.run(ask([{"role": "user", "content": "Something else entirely, about the harbour."}]))
    assert other != a


def test_an_unfit_answer_is_resampled_with_a_derived_seed_before_a_repair(tmp_path):
    calls = []
    provider = Scripted('{"content": "x", "tone": "furious", "tags": []}', "not json at all", GOOD)
    reply = asyncio.run(gateway(tmp_path, provider, calls=calls).structured("dialog", MESSAGES, Reply))
    assert reply.tone == "calm"
    first, resample, repair = provider.requests
    assert resample.messages == first.messages and resample.seed != first.seed   # a resample, not a repair
    assert repair.messages[-2] == {"role": "assistant", "content": "not json at all"}
    assert "does not fit" in repair.messages[-1]["content"]
    assert len(calls) == 3 and [c.error is not None for c in calls] == [True, True, False]  # every attempt a row


def test_resample_seeds_are_the_same_on_every_rerun(tmp_path):
    seeds = []
    for run in range(2):
        provider = Scripted("{}", GOOD)
        asyncio.run(gateway(tmp_path / str(run), provider, mode="off").structured("dialog", MESSAGES, Reply))
        seeds.append([r.seed for r in provider.requests])
    assert seeds[0] == seeds[1] and seeds[0][0] != seeds[0][1]


@pytest.mark.parametrize("cut", [Completion('{"content": "Up four per', 100, 20, finish_reason="length"),
                                 Completion('{"content": "Up four percent.", "tone": "calm", "tags": ["a', 100, 20)],
                         ids=["finish_reason_length", "json_ends_early"])
def test_a_cut_off_answer_is_asked_again_with_more_room(tmp_path, cut):
    provider = Scripted(cut, GOOD)
    reply = asyncio.run(gateway(tmp_path, provider).structured("dialog", MESSAGES, Reply, max_tokens=20))
    assert reply.content == "Up four percent."
    first, again = provider.requests
    assert again.max_tokens > first.max_tokens and again.max_tokens <= CARD.max_output
    assert again.messages == first.messages and again.seed == first.seed


def test_an_answer_unfit_every_time_is_a_clear_call_failure(tmp_path):
    provider = Scripted("not json at all", "{}", '{"content": "x"}')
    expected = r"dialog call to scripted .* Reply in 3 attempts.*answer: '\{\"content\": \"x\"\}'"
    with pytest.raises(StructuredOutputError, match=expected) as caught:
        asyncio.run(gateway(tmp_path, provider).structured("dialog", MESSAGES, Reply))
    assert isinstance(caught.value, CallFailed) and caught.value.role == "dialog"
    assert len(provider.requests) == 3


def test_llm_structured_attempts_bounds_the_requests(tmp_path):
    provider = Scripted("{}", "{}", "{}", "{}", GOOD)
    gw = ModelGateway({"dialog": [CARD]}, ResponseCache(tmp_path / "cache.db"), "off",
                      Budget(BudgetConfig(kind="unlimited")), seed=7, on_call=lambda _: None,
                      providers={CARD.name: provider}, structured_attempts=2)
    with pytest.raises(StructuredOutputError, match="in 2 attempts"):
        asyncio.run(gw.structured("dialog", MESSAGES, Reply))
    assert len(provider.requests) == 2 and provider.requests[1].seed != provider.requests[0].seed


def test_too_many_failed_calls_in_a_row_stop_the_run(tmp_path):
    provider = Scripted(*["{}"] * 6, GOOD, *["{}"] * 9)
    gw = ModelGateway({"dialog": [CARD]}, ResponseCache(tmp_path / "cache.db"), "off",
                      Budget(BudgetConfig(kind="unlimited")), seed=7, on_call=lambda _: None,
                      providers={CARD.name: provider}, structured_attempts=3, max_consecutive_failures=3)

    async def ask(n):
        return await gw.structured("dialog", [{"role": "user", "content": f"question {n}"}], Reply)
    outcomes = []
    for n in range(7):
        try:
            asyncio.run(ask(n))
            outcomes.append("ok")
        except ProviderDown:
            outcomes.append("down")
            break
        except CallFailed:
            outcomes.append("failed")
    # two calls fail (three attempts each), a success resets the streak, and the third failure in a row stops
    assert outcomes == ["failed", "failed", "ok", "failed", "failed", "down"]


def test_raw_control_characters_inside_strings_are_accepted(tmp_path):
    provider = Scripted('{"content": "line one\nline two", "tone": "tense", "tags": []}')
    reply = asyncio.run(gateway(tmp_path, provider).structured("dialog", MESSAGES, Reply))
    assert reply.content == "line one\nline two"


def test_cache_serves_a_repeat_for_free_and_replay_never_calls(tmp_path):
    calls = []
    first = Scripted(GOOD)
    asyncio.run(gateway(tmp_path, first, calls=calls).structured("dialog", MESSAGES, Reply))
    replay = Scripted()
    reply = asyncio.run(gateway(tmp_path, replay, mode="replay", calls=calls).structured("dialog", MESSAGES, Reply))
    assert reply.content == "Up four percent." and replay.requests == []
    assert [c.cached for c in calls] == [False, True]
    assert calls[0].cost_usd == pytest.approx((100 * 2.0 + 20 * 8.0) / 1e6) and calls[1].cost_usd == 0


def test_replay_miss_describes_the_request(tmp_path):
    provider = Scripted()
    with pytest.raises(ReplayMiss, match="replay.*dialog call to scripted-1.*quarterly numbers"):
        asyncio.run(gateway(tmp_path, provider, mode="replay").structured("dialog", MESSAGES, Reply))
    assert provider.requests == []


def test_hard_budget_refuses_a_call_whose_worst_case_crosses_the_cap(tmp_path):
    provider = Scripted(GOOD, GOOD)
    cap = BudgetConfig(kind="hard", max_cost_usd=0.0005)
    gw = gateway(tmp_path, provider, mode="off", budget=cap)
    asyncio.run(gw.structured("dialog", MESSAGES, Reply, max_tokens=10))  # worst case ~$0.0001
    with pytest.raises(BudgetExhausted, match="max_cost_usd"):
        asyncio.run(gw.structured("dialog", MESSAGES, Reply, max_tokens=500))  # worst case ~$0.004
    assert len(provider.requests) == 1
    assert gw.budget.cost_usd <= cap.max_cost_usd


def test_token_budget_covers_the_longest_possible_answer():
    schema = Reply.model_json_schema()
    longest = '{"content": "' + "x" * 80 + '", "tone": "tense", "tags": ["' + "y" * 400 + '", "' + "y" * 400 + '"]}'
    assert worst_case_chars(schema) >= len(longest)
    assert token_budget(schema) >= len(longest) // 2
