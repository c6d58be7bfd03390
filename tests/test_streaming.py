"""Free text streamed through the gateway (chat with a character) over real sockets: the fault server on
127.0.0.1 speaking server-sent events, its failures before and after the first piece, and the ledger,
budget and cache a streamed call goes through like any other."""

from __future__ import annotations

import asyncio

import pytest
from fault_server import FaultServer, broken_stream, fault_server, ok, status  # noqa: F401

from timepoint.config import BudgetConfig, ModelCard
from timepoint.errors import BudgetExhausted
from timepoint.llm import Budget, ModelGateway, ResponseCache
from timepoint.llm.errors import ProviderError
from timepoint.llm.retry import RetryPolicy

ANSWER = "The harbour is quiet tonight, and the gate is shut."
MESSAGES = [{"role": "system", "content": "You are a watchman."}, {"role": "user", "content": "Report."}]
FAST = RetryPolicy(retries=2, backoff_s=0.01, backoff_max_s=0.05)


@pytest.fixture
def server(fault_server):  # noqa: F811 - the fixture imported from fault_server
    fault_server.answer = ANSWER
    return fault_server


def card(server: FaultServer) -> ModelCard:
    return ModelCard(name="remote", provider="openai", model_id="remote-model", base_url=server.base_url,
                     license="MIT", training_safe=True, context_length=8192, max_output=512, price_in=2.0,
                     price_out=8.0, structured_output="json_schema", timeout_s=5.0)


def stream(tmp_path, server, calls: list, *, cache_mode: str = "off", budget: Budget | None = None):
    """The pieces of one streamed answer, or the exception that ended it (with the pieces before it)."""
    async def go():
        gw = ModelGateway({"dialog": [card(server)]}, ResponseCache(tmp_path / "cache.db"), cache_mode,
                          budget or Budget(BudgetConfig(kind="unlimited")), seed=7, on_call=calls.append,
                          policy=FAST)
        pieces = []
        try:
            async for piece in gw.stream("dialog", MESSAGES, max_tokens=64):
                pieces.append(piece)
            return pieces, None
        except Exception as exc:  # noqa: BLE001 - the test looks at what ended the stream
            return pieces, exc
        finally:
            await gw.close()
    return asyncio.run(go())


def test_pieces_arrive_as_sent_and_the_call_is_accounted(tmp_path, server):
    calls = []
    pieces, error = stream(tmp_path, server, calls)
    assert error is None and len(pieces) > 5 and "".join(pieces) == ANSWER
    body = server.requests[-1]
    assert body["stream"] is True and "response_format" not in body and body["max_tokens"] == 64
    (record,) = calls
    assert record.error is None and record.answer == ANSWER and (record.tokens_in, record.tokens_out) == (40, 12)
    assert record.cost_usd == pytest.approx((40 * 2.0 + 12 * 8.0) / 1e6)


def test_a_failure_before_the_first_piece_is_retried(tmp_path, server):
    server.push(status(503), ok())
    calls = []
    pieces, error = stream(tmp_path, server, calls)
    assert error is None and "".join(pieces) == ANSWER
    assert len(server.requests) == 2 and calls[0].attempts == 2


def test_a_stream_broken_after_its_first_pieces_fails_as_it_stands(tmp_path, server):
    server.push(broken_stream())
    calls, budget = [], Budget(BudgetConfig(kind="hard", max_cost_usd=1.0))
    pieces, error = stream(tmp_path, server, calls, budget=budget)
    assert isinstance(error, ProviderError) and "".join(pieces) == ANSWER[:6]
    assert len(server.requests) == 1  # words already shown are not taken back by a retry
    (record,) = calls
    assert record.error and budget.cost_usd == 0 and budget._in_flight == 0


def test_a_cached_answer_comes_back_whole_without_a_request(tmp_path, server):
    calls = []
    first, _ = stream(tmp_path, server, calls, cache_mode="read_write")
    again, _ = stream(tmp_path, server, calls, cache_mode="read_write")
    assert again == [ANSWER] == ["".join(first)]
    assert len(server.requests) == 1 and [c.cached for c in calls] == [False, True]


def test_a_hard_budget_refuses_a_stream_before_any_request(tmp_path, server):
    calls = []
    _, error = stream(tmp_path, server, calls, budget=Budget(BudgetConfig(kind="hard", max_cost_usd=1e-6)))
    assert isinstance(error, BudgetExhausted) and server.requests == []
