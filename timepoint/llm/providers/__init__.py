"""Providers by name. Each is imported only when a model card asks for it."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from typing import Protocol

from ..request import Completion, Request

_PROVIDERS = {
    "local": "timepoint.llm.providers.local:LocalProvider",
    "test": "timepoint.llm.providers.test:TestProvider",
    "openai": "timepoint.llm.providers.openai_compatible:OpenAICompatibleProvider",
}


class Provider(Protocol):
    async def complete(self, request: Request) -> Completion: ...

    def stream(self, request: Request) -> AsyncIterator[str | Completion]:
        """Free text (the request has no schema) as it is written: text pieces, then the whole Completion."""

    async def close(self) -> None: ...


def make_provider(card) -> Provider:
    module, _, cls = _PROVIDERS[card.provider].partition(":")
    return getattr(importlib.import_module(module), cls)(card)
