"""Retries with exponential backoff and jitter. Providers say which failures are worth retrying
(`TransientError`); anything else is raised at once."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import ProviderError, TransientError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 4
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Retry-After when the server gives one; else base·2^(attempt−1) with ±20% jitter, capped."""
        if retry_after is not None:
            return min(retry_after, self.backoff_max_s)
        base = min(self.backoff_s * 2 ** (attempt - 1), self.backoff_max_s)
        return base * rng.uniform(0.8, 1.2)


async def with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy, what: str,
                       rng: random.Random | None = None) -> tuple[T, int]:
    """Run `call`, retrying transient failures; returns the result and the attempts it took."""
    rng = rng or random.Random()
    attempt = 1
    while True:
        try:
            return await call(), attempt
        except TransientError as exc:
            if attempt > policy.retries:
                final = ProviderError(f"{what}: gave up after {attempt} attempts: {exc}")
                final.attempts = attempt
                raise final from exc
            wait = policy.delay(attempt, exc.retry_after, rng)
            log.warning("%s: %s; retry %d/%d in %.1fs", what, exc, attempt, policy.retries, wait)
            await asyncio.sleep(wait)
            attempt += 1
        except ProviderError as exc:
            exc.attempts = attempt
            raise
