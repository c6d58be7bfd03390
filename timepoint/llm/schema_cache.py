"""Response schemas built from run data (participants, counts) are made once per distinct arguments:
building a pydantic model and its JSON schema costs more than the rest of a call's bookkeeping."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel

F = TypeVar("F", bound=Callable[..., type[BaseModel]])


def cached_schema(build: F) -> F:
    """Memoise a schema factory; list arguments are taken as tuples."""
    cached = functools.cache(build)

    @functools.wraps(build)
    def wrapper(*args):
        return cached(*(tuple(a) if isinstance(a, list) else a for a in args))
    return wrapper  # type: ignore[return-value]


@functools.cache
def json_schema(schema: type[BaseModel]) -> dict:
    return schema.model_json_schema()
