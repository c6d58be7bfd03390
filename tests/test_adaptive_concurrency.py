"""Adaptive concurrency per model card: a provider that throttles (429, 503) gets fewer calls at once, and
successes bring it back to `max_concurrency`. Against the fault server on 127.0.0.1 (real sockets), where
`max_active` is what the provider would feel; and the limit's own arithmetic and cancellation."""

from __future__ import annotations

import asyncio
import logging

import pytest
from fault_server import fault_server, ok, status  # noqa: F401
from test_http_provider import ANSWER, FAST, Reply, asked, card, gateway

from timepoint.llm.errors import TransientError
from timepoint.llm.limiter import AdaptiveLimit
from timepoint.llm.retry import RetryPolicy

ONE_RETRY = RetryPolicy(retries=1, backoff_s=0.01, backoff_max_s=0.05)
NO_WAIT = {"Retry-After": "0"}


@pytest.fixture
def server(fault_server):  # noqa: F811 - the fixture imported from fault_server
    fault_server.answer = ANSWER
    return fault_server


def through_gateway(tmp_path, server, max_concurrency: int, work, policy: RetryPolicy = FAST) -> tuple:
    """`work(gw)` on a fresh gateway to one card on `server`, closed afterwards; its result and the ledger."""
    calls = []

    async def go():
        gw = gateway(tmp_path, {"dialog": [card(server, max_concurrency=max_concurrency)]}, calls, policy=policy)
        try:
            return await work(gw)
        finally:
            await gw.close()

    return asyncio.run(go()), calls


def test_a_burst_of_429s_lowers_the_requests_in_flight_and_successes_restore_them(tmp_path, server):
    server.delay = 0.3  # ok answers take a while, so requests overlap at the server
    server.push(*[status(429, NO_WAIT)] * 8)  # four calls, two attempts each: all throttled

    async def phases(gw):
        async def phase(n: int, first: int) -> tuple[list, int]:
            server.max_active = 0
            replies = await asyncio.gather(*(gw.structured("dialog", asked(first + i), Reply) for i in range(n)),
                                           return_exceptions=True)
            return replies, server.max_active

        return await phase(4, 0), await phase(4, 10), await phase(8, 20)

    ((burst, _), (after, after_max), (recovered, recovered_max)), _ = through_gateway(tmp_path, server, 4, phases,
                                                                                     ONE_RETRY)
    assert all("HTTP 429" in str(e) for e in burst) and server.counts["status 429"] == 8
    # Four limit-halvings leave one call at a time; each success adds one, so four calls never overlap by more
    # than two.
    assert all(isinstance(r, Reply) for r in after) and after_max == 2
    assert all(isinstance(r, Reply) for r in recovered) and recovered_max == 4


def test_the_retries_of_a_throttled_burst_wait_under_the_lowered_limit(tmp_path, server):
    server.delay = 0.3
    server.push(*[status(429, NO_WAIT)] * 4)  # four calls sent together, all throttled once

    async def burst(gw):
        async def after_the_burst():
            while server.counts["status 429"] < 4:
                await asyncio.sleep(0.005)
            server.max_active = 0

        return await asyncio.gather(after_the_burst(), *(gw.structured("dialog", asked(i), Reply) for i in range(4)))

    (_, *replies), calls = through_gateway(tmp_path, server, 4, burst)
    assert all(isinstance(r, Reply) for r in replies) and [c.attempts for c in calls] == [2] * 4
    assert server.max_active <= 2  # held slots through their retries, they would all be back at once: 4


@pytest.mark.parametrize(("code", "throttles"), [(429, True), (503, True), (529, True),
                                                 (500, False), (502, False), (504, False)])
def test_a_streamed_call_lowers_the_limit_only_when_throttled(tmp_path, server, caplog, code, throttles):
    server.push(status(code, NO_WAIT), ok())

    async def streamed(gw):
        return [piece async for piece in gw.stream("dialog", asked(1), max_tokens=64)]

    with caplog.at_level(logging.INFO, logger="timepoint.llm.limiter"):
        pieces, calls = through_gateway(tmp_path, server, 4, streamed)
    assert "".join(pieces) == server.answer and calls[-1].attempts == 2
    changes = [r.getMessage() for r in caplog.records if r.name == "timepoint.llm.limiter"]
    assert changes == (["remote: at most 2 calls at once, was 4 (throttled)",
                        "remote: at most 3 calls at once, was 2 (recovering)"] if throttles else [])


def test_the_limit_halves_down_to_one_and_climbs_by_one_up_to_its_ceiling():
    limit = AdaptiveLimit("m", 6)
    seen = []
    for error in [TransientError("429", throttled=True)] * 3 + [TransientError("500")]:
        limit.failed(error)
        seen.append(limit.limit)
    for _ in range(7):
        limit.succeeded()
        seen.append(limit.limit)
    assert seen == [3, 1, 1, 1, 2, 3, 4, 5, 6, 6, 6]


def test_a_success_that_raises_the_limit_lets_a_waiting_call_in_at_once():
    """As a streamed call does, still holding its slot while it reads the rest of the answer."""
    async def go():
        limit = AdaptiveLimit("m", 2)
        limit.failed(TransientError("HTTP 503", throttled=True))
        streaming = limit.slot()
        await streaming.__aenter__()
        waiting = asyncio.create_task(limit.slot().__aenter__())
        await asyncio.sleep(0)
        await streaming.run(lambda: asyncio.sleep(0))  # the stream opened: the limit is 2 again
        await asyncio.wait_for(waiting, 1)  # times out if only a release would wake it
        return limit.in_flight

    assert asyncio.run(go()) == 2


def test_a_throttled_call_over_the_limit_retries_before_new_calls_begin():
    """So calls begun and unfinished never outnumber `max_concurrency` (what a kill can lose)."""
    async def go():
        limit, order = AdaptiveLimit("m", 2), []
        first, second = limit.slot(), limit.slot()
        await first.__aenter__()
        await second.__aenter__()

        async def new_call():
            async with limit.slot():
                order.append("new")

        async def throttled():
            raise TransientError("HTTP 429", throttled=True)

        async def noted():
            order.append("retry")

        new = asyncio.create_task(new_call())
        await asyncio.sleep(0)  # the new call waits
        with pytest.raises(TransientError):
            await first.run(throttled)  # the limit is 1 now, with two in flight: the first gives its slot back
        await second.__aexit__()  # a slot frees while the first backs off
        await asyncio.sleep(0)
        await first.run(noted)
        await first.__aexit__()
        await new
        return order

    assert asyncio.run(go()) == ["retry", "new"]


@pytest.mark.parametrize("granted", [False, True], ids=["while-waiting", "as-granted"])
def test_a_cancelled_waiter_leaks_no_slot(granted):
    """Cancelled while it waits, or just after a release handed it the slot: either way the slot is free."""
    async def go():
        limit = AdaptiveLimit("m", 1)
        holder = limit.slot()
        await holder.__aenter__()
        waiter = asyncio.create_task(limit.slot().__aenter__())
        await asyncio.sleep(0)
        if granted:
            await holder.__aexit__()
        waiter.cancel()
        if not granted:
            await holder.__aexit__()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await asyncio.wait_for(limit.slot().__aenter__(), 1)  # times out if the slot leaked
        return limit.in_flight

    assert asyncio.run(go()) == 1


def test_a_call_cancelled_while_waiting_for_a_slot_leaves_the_limit_whole(tmp_path, server):
    server.delay = 0.3

    async def cancelled(gw):
        first = asyncio.create_task(gw.structured("dialog", asked(1), Reply))
        waiting = asyncio.create_task(gw.structured("dialog", asked(2), Reply))
        await asyncio.sleep(0.1)
        waiting.cancel()
        await first
        server.max_active = 0
        return await asyncio.wait_for(asyncio.gather(*(gw.structured("dialog", asked(i), Reply) for i in (3, 4))), 5)

    replies, _ = through_gateway(tmp_path, server, 1, cancelled)
    assert len(replies) == 2
    assert server.max_active == 1 and len(server.requests) == 3  # the cancelled call never sent
