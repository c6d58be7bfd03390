"""How many calls a model card may have in flight at once: `max_concurrency` until its provider throttles,
then fewer, climbing back as calls succeed (additive increase, multiplicative decrease, as TCP backs off)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .errors import TransientError

log = logging.getLogger(__name__)
T = TypeVar("T")


class AdaptiveLimit:
    """A semaphore whose size moves: halved (never below 1) on each throttled attempt, one more per
    successful one, up to `ceiling`. Requests on the wire when it drops finish; the rest wait until fewer
    than `limit` are in flight, first come first served, calls already begun (retries) before new ones:
    so no more calls are begun and unfinished than `ceiling`, and a kill loses no more than that."""

    def __init__(self, name: str, ceiling: int):
        self.name, self.ceiling, self.limit = name, ceiling, ceiling
        self.in_flight = 0
        self._queues: tuple[deque[asyncio.Future], ...] = (deque(), deque())  # retries, then new calls

    def slot(self) -> Slot:
        return Slot(self)

    def ticket(self, retry: bool = False) -> asyncio.Future:
        """A place in line, done when it holds a slot (at once if one is free and nobody waits). A retry's
        place is ahead of every new call's; a place given up is cancelled, and `_wake` skips it."""
        ticket = asyncio.get_running_loop().create_future()
        self._queues[0 if retry else 1].append(ticket)
        self._wake()
        return ticket

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def failed(self, error: TransientError) -> None:
        if error.throttled and self.limit > 1:
            self._set(self.limit // 2, "throttled")  # never below 1

    def succeeded(self) -> None:
        if self.limit < self.ceiling:
            self._set(self.limit + 1, "recovering")
            self._wake()

    def _set(self, limit: int, why: str) -> None:
        log.info("%s: at most %d calls at once, was %d (%s)", self.name, limit, self.limit, why)
        self.limit = limit

    def _wake(self) -> None:
        """Hand free slots to waiters in order; the slot is counted here, so no wakeup can be lost."""
        for queue in self._queues:
            while queue and self.in_flight < self.limit:
                waiter = queue.popleft()
                if not waiter.done():  # a place given up (cancelled) is skipped
                    self.in_flight += 1
                    waiter.set_result(None)


class Slot:
    """One call's place under an AdaptiveLimit, kept through its retries unless a throttle has lowered the
    limit below the calls in flight: then it is given back, and the call queues at once for its retry."""

    def __init__(self, limit: AdaptiveLimit):
        self._limit, self._ticket = limit, None

    async def __aenter__(self) -> Slot:
        self._ticket = self._limit.ticket()
        try:
            await self._ticket
        except asyncio.CancelledError:
            self._give_back()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        self._give_back()

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """One attempt: wait for the slot if a failure gave it up, call, and tell the limit how it went."""
        await self._ticket
        try:
            result = await call()
        except TransientError as exc:
            self._limit.failed(exc)
            if self._limit.in_flight > self._limit.limit:
                self._give_back()
                self._ticket = self._limit.ticket(retry=True)
            raise
        self._limit.succeeded()
        return result

    def _give_back(self) -> None:
        """The slot back to the limit if the ticket holds one, else the place in line (if still waiting)."""
        ticket, self._ticket = self._ticket, None
        if ticket is not None and ticket.done() and not ticket.cancelled():
            self._limit.release()
        elif ticket is not None:
            ticket.cancel()
