"""The OpenAI-compatible provider through the gateway, against a scripted server on 127.0.0.1.

Real sockets and real httpx: request shape per structured-output mode, which failures are retried and
which are not, timeouts, Retry-After, cost accounting, fallback and concurrency limits.
"""

from __future__ import annotations

import asyncio
import json
from typing import Literal

import pytest
from fault_server import FaultServer, drop, empty, error_in_body, fault_server, garbled, hang, ok, status  # noqa: F401
from pydantic import BaseModel, Field

from timepoint.config import BudgetConfig, ModelCard
from timepoint.llm import Budget, ModelGateway, ResponseCache
from timepoint.llm.errors import AccountError, ProviderError, TransientError
from timepoint.llm.retry import RetryPolicy


class Reply(BaseModel):
    content: str = Field(max_length=80)
    tone: Literal["calm", "tense"]


ANSWER = '{"content": "The harbour is quiet tonight.", "tone": "calm"}'
OTHER = '{"content": "Something is wrong at the gate.", "tone": "tense"}'
MESSAGES = [{"role": "system", "content": "You are a watchman."},
            {"role": "user", "content": "Report on the harbour."}]
FAST = RetryPolicy(retries=2, backoff_s=0.01, backoff_max_s=0.05)
KEY_ENV = "TIMEPOINT_FAULT_TEST_KEY"


@pytest.fixture
def server(fault_server):  # noqa: F811 - the fixture imported from fault_server
    fault_server.answer = ANSWER
    return fault_server


def card(server: FaultServer, name: str = "remote", **overrides) -> ModelCard:
    fields = dict(name=name, provider="openai", model_id=f"{name}-model", base_url=server.base_url,
                  license="MIT", training_safe=True, context_length=8192, max_output=512,
                  price_in=2.0, price_out=8.0, structured_output="json_schema", timeout_s=5.0, temperature=0.4)
    return ModelCard(**{**fields, **overrides})


def gateway(tmp_path, chains: dict[str, list[ModelCard]], calls: list, *, policy: RetryPolicy = FAST,
            max_concurrency: int = 16) -> ModelGateway:
    """A gateway with no cache in the way; build it inside the event loop that will use it."""
    return ModelGateway(chains, ResponseCache(tmp_path / "cache.db"), "off",
                        Budget(BudgetConfig(kind="unlimited")), seed=7, on_call=calls.append,
                        policy=policy, max_concurrency=max_concurrency)


def ask(tmp_path, chain: list[ModelCard], calls: list | None = None, *, policy: RetryPolicy = FAST,
        messages: list[dict] = MESSAGES, **params) -> Reply:
    """One structured dialog call through a fresh gateway, closed afterwards."""
    calls = [] if calls is None else calls

    async def go():
        gw = gateway(tmp_path, {"dialog": chain}, calls, policy=policy)
        try:
            return await gw.structured("dialog", messages, Reply, **params)
        finally:
            await gw.close()

    return asyncio.run(go())


# --- request shape ----------------------------------------------------------------------------------


def test_json_schema_mode_sends_the_schema_as_response_format(tmp_path, server):
    reply = ask(tmp_path, [card(server, structured_output="json_schema")], max_tokens=100)
    assert reply == Reply.model_validate_json(ANSWER)
    (body,) = server.requests
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert isinstance(fmt["json_schema"]["name"], str) and fmt["json_schema"]["name"]
    assert fmt["json_schema"]["schema"] == Reply.model_json_schema()
    assert body["messages"] == MESSAGES  # the schema rides in response_format, not the prompt
    assert body["model"] == "remote-model"
    assert body["temperature"] == 0.4 and body["max_tokens"] == 100 and body["seed"] == 7


def test_json_object_mode_puts_the_schema_in_the_system_message(tmp_path, server):
    ask(tmp_path, [card(server, structured_output="json_object")], temperature=0.9)
    (body,) = server.requests
    assert body["response_format"] == {"type": "json_object"}
    system, user = body["messages"]
    assert system["role"] == "system" and system["content"].startswith(MESSAGES[0]["content"] + "\n\n")
    schema_text = system["content"].rsplit("\n", 1)[-1]
    assert json.loads(schema_text) == Reply.model_json_schema()
    assert user == MESSAGES[1]
    assert body["temperature"] == 0.9 and body["seed"] == 7 and body["model"] == "remote-model"


def test_json_object_mode_adds_a_system_message_when_there_is_none(tmp_path, server):
    ask(tmp_path, [card(server, structured_output="json_object")], messages=MESSAGES[1:])
    system, user = server.requests[0]["messages"]
    assert system["role"] == "system" and json.dumps(Reply.model_json_schema(), separators=(",", ":")) in \
        system["content"]
    assert user == MESSAGES[1]


def test_grammar_mode_sends_the_schema_inside_a_json_object_format(tmp_path, server):
    ask(tmp_path, [card(server, structured_output="grammar")])
    (body,) = server.requests
    assert body["response_format"] == {"type": "json_object", "schema": Reply.model_json_schema()}
    assert body["messages"] == MESSAGES


def test_default_max_tokens_is_capped_by_the_cards_max_output(tmp_path, server):
    ask(tmp_path, [card(server, max_output=30)])
    assert server.requests[0]["max_tokens"] == 30


def test_bearer_key_is_sent_when_its_variable_is_set(tmp_path, server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-fault-123")
    ask(tmp_path, [card(server, api_key_env=KEY_ENV)])
    assert server.headers[0]["authorization"] == "Bearer sk-fault-123"


def test_no_authorization_header_without_a_key(tmp_path, server, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    ask(tmp_path, [card(server, api_key_env=KEY_ENV)])
    assert "authorization" not in server.headers[0]


# --- retries ----------------------------------------------------------------------------------------


@pytest.fixture
def slept(monkeypatch):
    """Backoff sleeps recorded instead of slept."""
    real_sleep, delays = asyncio.sleep, []

    async def record(seconds, *args, **kwargs):
        delays.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr("timepoint.llm.retry.asyncio.sleep", record)
    return delays


def test_429_waits_exactly_retry_after_then_succeeds(tmp_path, server, slept):
    server.push(status(429, {"Retry-After": "2"}, "slow down"), ok())
    calls = []
    patient = RetryPolicy(retries=2, backoff_s=0.01, backoff_max_s=60)  # the cap must not hide Retry-After
    reply = ask(tmp_path, [card(server)], calls, policy=patient)
    assert reply.tone == "calm"
    assert len(server.requests) == 2
    assert slept == [2.0]
    (record,) = calls
    assert record.attempts == 2 and record.error is None


def test_retry_after_is_capped_by_backoff_max(tmp_path, server, slept):
    server.push(status(503, {"Retry-After": "120"}), ok())
    ask(tmp_path, [card(server)], policy=RetryPolicy(retries=2, backoff_s=0.01, backoff_max_s=5))
    assert slept == [5]


TRANSIENT = {
    "http_500": status(500, body="internal error"),
    "http_503": status(503),
    "garbled_body": garbled(),
    "empty_content": empty(),
    "error_in_body": error_in_body(502),
    "error_in_body_without_code": error_in_body(None),
    "dropped_connection": drop(),
}


@pytest.mark.parametrize("fault", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_transient_failure_is_retried_once_then_succeeds(tmp_path, server, fault):
    server.push(fault, ok())
    calls = []
    reply = ask(tmp_path, [card(server)], calls)
    assert reply == Reply.model_validate_json(ANSWER)
    assert len(server.requests) == 2
    (record,) = calls
    assert record.attempts == 2 and record.error is None
    assert record.tokens_in == 40 and record.tokens_out == 12


def test_timeout_is_retried(tmp_path, server):
    server.push(hang(2), ok())
    calls = []
    reply = ask(tmp_path, [card(server, timeout_s=0.3)], calls)
    assert reply.tone == "calm"
    assert len(server.requests) == 2 and calls[0].attempts == 2 and calls[0].error is None


def test_a_server_that_always_hangs_gives_up_after_the_retries(tmp_path, server):
    server.push(hang(2), hang(2), hang(2))
    calls = []
    with pytest.raises(ProviderError, match="gave up after 2 attempts") as caught:
        ask(tmp_path, [card(server, timeout_s=0.3)], calls, policy=RetryPolicy(1, 0.01, 0.05))
    assert "0.3s" in str(caught.value)
    assert len(server.requests) == 2
    (record,) = calls
    assert record.error and "gave up after 2 attempts" in record.error
    assert record.attempts == 2 and record.cost_usd == 0


FATAL = {
    "http_400": status(400, body='{"error": "bad request"}'),
    "http_401": status(401, body='{"error": "invalid key"}'),
    "http_402": status(402, body='{"error": "insufficient credit"}'),
    "http_403": status(403, body='{"error": "forbidden"}'),
    "error_in_body_401": error_in_body(401, "no auth credentials"),
}


@pytest.mark.parametrize("fault", FATAL.values(), ids=FATAL.keys())
def test_fatal_failure_is_never_retried(tmp_path, server, fault):
    """A bad request fails only its call (a gap); a refused account stops the run: nothing else would pass."""
    server.push(fault, ok())
    calls = []
    with pytest.raises((ProviderError, AccountError)) as caught:
        ask(tmp_path, [card(server)], calls)
    assert not isinstance(caught.value, TransientError)
    assert isinstance(caught.value, AccountError) == (fault.code in (401, 402, 403))
    assert str(fault.code) in str(caught.value)
    assert len(server.requests) == 1
    (record,) = calls
    assert record.attempts == 1 and record.error == str(caught.value)


# --- cost ---------------------------------------------------------------------------------------------


def test_the_providers_reported_cost_is_the_calls_cost(tmp_path, server):
    server.cost = 0.00321
    calls = []
    ask(tmp_path, [card(server)], calls)
    assert calls[0].cost_usd == pytest.approx(0.00321)


def test_without_a_reported_cost_tokens_are_priced_from_the_card(tmp_path, server):
    calls = []
    ask(tmp_path, [card(server, price_in=3.0, price_out=15.0)], calls)
    (record,) = calls
    assert record.tokens_in == 40 and record.tokens_out == 12
    assert record.cost_usd == pytest.approx((40 * 3.0 + 12 * 15.0) / 1_000_000)


# --- fallback -----------------------------------------------------------------------------------------


def test_a_failing_card_falls_back_to_the_next_in_the_chain(tmp_path):
    calls = []
    with FaultServer([status(500), status(500), status(500)], answer=ANSWER) as bad, \
            FaultServer(answer=OTHER) as good:
        reply = ask(tmp_path, [card(bad, "bad"), card(good, "good")], calls, policy=RetryPolicy(1, 0.01, 0.05))
    assert reply == Reply.model_validate_json(OTHER)
    assert len(bad.requests) == 2 and len(good.requests) == 1
    first, second = calls
    assert first.model == "bad-model" and first.error and "HTTP 500" in first.error and first.attempts == 2
    assert second.model == "good-model" and second.error is None and second.attempts == 1


# --- concurrency --------------------------------------------------------------------------------------


def asked(i: int) -> list[dict]:
    return [{"role": "user", "content": f"Report number {i} on the harbour."}]


def test_a_cards_max_concurrency_limits_requests_in_flight(tmp_path, server):
    server.delay = 0.3
    calls = []

    async def go():
        gw = gateway(tmp_path, {"dialog": [card(server, max_concurrency=2)]}, calls)
        try:
            return await asyncio.gather(*(gw.structured("dialog", asked(i), Reply) for i in range(6)))
        finally:
            await gw.close()

    replies = asyncio.run(go())
    assert len(replies) == 6 and len(server.requests) == 6
    assert len({b["messages"][-1]["content"] for b in server.requests}) == 6
    assert server.max_active == 2


def test_the_gateways_max_concurrency_limits_all_cards_together(tmp_path, server):
    server.delay = 0.3
    calls = []

    async def go():
        chains = {"dialog": [card(server, "a", max_concurrency=4)], "judge": [card(server, "b", max_concurrency=4)]}
        gw = gateway(tmp_path, chains, calls, max_concurrency=3)
        try:
            return await asyncio.gather(*(gw.structured(("dialog", "judge")[i % 2], asked(i), Reply)
                                          for i in range(8)))
        finally:
            await gw.close()

    asyncio.run(go())
    assert len(server.requests) == 8
    assert {b["model"] for b in server.requests} == {"a-model", "b-model"}
    assert server.max_active == 3
