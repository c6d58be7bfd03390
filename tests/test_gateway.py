"""The model gateway: structured answers, repair, cache and replay, hard budgets, the call ledger."""

from __future__ import annotations

import asyncio
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from timepoint.config import BudgetConfig, ModelCard
from timepoint.errors import BudgetExhausted
from timepoint.llm import Budget, ModelGateway, ReplayMiss, ResponseCache, StructuredOutputError
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
        return Completion(text=self.answers.pop(0), tokens_in=100, tokens_out=20)

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


def test_invalid_answer_gets_one_repair_round(tmp_path):
    calls = []
    provider = Scripted('{"content": "x", "tone": "furious", "tags": []}', GOOD)
    reply = asyncio.run(gateway(tmp_path, provider, calls=calls).structured("dialog", MESSAGES, Reply))
    assert reply.tone == "calm"
    assert len(provider.requests) == 2 and len(calls) == 2
    repair = provider.requests[1].messages
    assert repair[-2]["role"] == "assistant" and "tone" in repair[-1]["content"]


def test_second_invalid_answer_is_a_clear_error(tmp_path):
    provider = Scripted("not json at all", '{"content": "x"}')
    expected = r"dialog call to scripted .* Reply .*answer: '\{\"content\": \"x\"\}'"
    with pytest.raises(StructuredOutputError, match=expected):
        asyncio.run(gateway(tmp_path, provider).structured("dialog", MESSAGES, Reply))


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
