"""A live status line on a terminal: step, calls (cached), tokens, dollars against the budget.
Silent when the output is not a terminal, so logs and CI stay clean."""

from __future__ import annotations

import sys
from typing import TextIO

from .llm.request import CallRecord


class Progress:
    def __init__(self, max_cost_usd: float | None, stream: TextIO = sys.stderr):
        self.stream = stream
        self.enabled = stream.isatty()
        self.cap = max_cost_usd
        self.step = "setting the scene"
        self.calls = self.cached = self.tokens = 0
        self.cost = 0.0

    def set_step(self, step: str) -> None:
        self.step = step
        self._render()

    def on_call(self, call: CallRecord) -> None:
        self.calls += 1
        self.cached += call.cached
        self.tokens += call.tokens_in + call.tokens_out
        self.cost += call.cost_usd
        self._render()

    def _render(self) -> None:
        if not self.enabled:
            return
        dollars = f"${self.cost:.4f}" + (f" of ${self.cap:.2f}" if self.cap is not None else "")
        line = f"{self.step} | {self.calls} calls ({self.cached} cached) | {self.tokens} tokens | {dollars}"
        self.stream.write("\r" + line[:150] + "\x1b[K\r")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\x1b[K")
            self.stream.flush()
