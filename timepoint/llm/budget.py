"""Budget enforcement: a hard cap is never crossed; a soft cap warns once and goes on."""

from __future__ import annotations

import logging

from ..config import BudgetConfig
from ..errors import BudgetExhausted

log = logging.getLogger(__name__)


class Budget:
    def __init__(self, config: BudgetConfig):
        self.config = config
        self.cost_usd = 0.0
        self.tokens = 0
        self.calls = 0
        self.price_factor = 1.0  # how far providers' reported costs have run above card prices
        self._warned = False

    def _crossings(self, cost: float, tokens: int, calls: int) -> list[str]:
        c = self.config
        checks = [("max_cost_usd", c.max_cost_usd, self.cost_usd + cost, "${:.4f}"),
                  ("max_tokens", c.max_tokens, self.tokens + tokens, "{:d}"),
                  ("max_calls", c.max_calls, self.calls + calls, "{:d}")]
        return [f"budget.{name}={cap} would be crossed ({fmt.format(total)})"
                for name, cap, total, fmt in checks if cap is not None and total > cap]

    def admit(self, worst_cost: float, worst_tokens: int) -> None:
        """Before a call: refuse it under a hard budget if its worst case crosses a cap.
        The worst case is priced at the card, scaled up if providers have charged more than that."""
        if self.config.kind == "hard":
            crossed = self._crossings(worst_cost * self.price_factor, worst_tokens, 1)
            if crossed:
                raise BudgetExhausted("; ".join(crossed))

    def spend(self, cost: float, tokens: int, card_cost: float | None = None) -> None:
        """After a call; `card_cost` is what it would have cost at card prices, when the provider billed it."""
        if card_cost and cost > card_cost:
            self.price_factor = max(self.price_factor, cost / card_cost)
        self.cost_usd += cost
        self.tokens += tokens
        self.calls += 1
        if self.config.kind == "soft" and not self._warned:
            crossed = self._crossings(0.0, 0, 0)
            if crossed:
                self._warned = True
                log.warning("soft budget: %s; going on", "; ".join(crossed))
