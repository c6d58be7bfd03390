"""Structured concurrency for the run's independent calls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def gather_all(*work: Awaitable[Any]) -> list[Any]:
    """Await all together, results in order. If one fails, the others are cancelled, not left running
    (a spent budget stops the calls still waiting), and its own exception is raised, not a group."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(w) for w in work]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [t.result() for t in tasks]
