"""A model request and its answer, as plain data. The request's key addresses the cache."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass


def _digest(fields: dict) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Request:
    provider: str
    model: str
    endpoint: str | None  # where the model is served (base URL, or GGUF path): one model id can name two models
    structured_output: str  # how the answer is held to the schema: another mode can give another answer
    messages: list[dict]
    json_schema: dict
    temperature: float
    top_p: float = 0.95
    max_tokens: int = 256
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int = 0

    def key(self) -> str:
        """Content address of the whole request, where and how it is asked included: same request, same answer."""
        return _digest(asdict(self))

    def content_key(self) -> str:
        """Address of what the model is asked, wherever and however: resample seeds derive from it, so a
        run against the same model at another URL sends the same requests."""
        return _digest({k: v for k, v in asdict(self).items() if k not in ("endpoint", "structured_output")})

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
