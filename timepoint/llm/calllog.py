"""calls.jsonl: every request and answer of a run, one line each, with secrets redacted."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from ..store import now_iso
from .request import CallRecord


def redactor(key_variables: Iterable[str | None]) -> Callable[[str | None], str | None]:
    """Replaces the values of the given environment variables, wherever they appear, by [redacted]."""
    secrets = [v for name in key_variables if name and (v := os.environ.get(name)) and len(v) >= 8]

    def redact(text: str | None) -> str | None:
        if text is None:
            return None
        for secret in secrets:
            text = text.replace(secret, "[redacted]")
        return text
    return redact


class CallLog:
    def __init__(self, path: Path, redact: Callable[[str | None], str | None]):
        self._file = path.open("a", encoding="utf-8")
        self._redact = redact

    def write(self, call: CallRecord) -> None:
        req = call.request
        entry = {
            "at": now_iso(), "role": call.role, "provider": call.provider, "model": call.model,
            "request_key": call.request_key, "cached": call.cached, "attempts": call.attempts,
            "tokens_in": call.tokens_in, "tokens_out": call.tokens_out, "tokens_reused": call.tokens_reused,
            "cost_usd": call.cost_usd,
            "latency_ms": round(call.latency_ms, 1), "error": call.error,
            "params": {k: getattr(req, k) for k in ("temperature", "top_p", "max_tokens", "frequency_penalty",
                                                    "presence_penalty", "seed")} if req else None,
            "messages": req.messages if req else None, "answer": call.answer,
        }
        self._file.write(self._redact(json.dumps(entry, ensure_ascii=False)) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
