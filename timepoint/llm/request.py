"""A model request and its answer, as plain data. The request's key addresses the cache."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Request:
    provider: str
    model: str
    messages: list[dict]
    json_schema: dict
    temperature: float
    top_p: float = 0.95
    max_tokens: int = 256
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int = 0

    def key(self) -> str:
        """Content address of the whole request: same request, same answer."""
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def prompt_chars(self) -> int:
        return sum(len(m["content"]) for m in self.messages)


@dataclass
class Completion:
    text: str
    tokens_in: int
    tokens_out: int
    cost_usd: float | None = None  # from the provider when it reports one; else priced from the card
    finish_reason: str | None = None  # "length": cut off at max_tokens
    tokens_reused: int = 0  # prompt tokens whose evaluation the provider reused from an earlier prompt


@dataclass
class CallRecord:
    """One line of the call ledger: what a call cost and how it went."""

    role: str
    provider: str
    model: str
    request_key: str
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_reused: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    cached: bool = False
    attempts: int = 1
    error: str | None = None
    request: Request | None = None   # for the call log, not the store
    answer: str | None = None
