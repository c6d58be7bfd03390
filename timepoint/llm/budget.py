"""Budget enforcement: a hard cap is never crossed; a soft cap warns once and goes on.

Calls run concurrently, so admission reserves each call's worst case until the call settles:
sixteen calls admitted together can never spend past a cap that each alone would fit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..config import BudgetConfig
from ..errors import BudgetExhausted

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reservation:
    cost: float
    tokens: int


class Budget:
    def __init__(self, config: BudgetConfig):
        self.config = config
        self.cost_usd = 0.0
        self.tokens = 0
        self.calls = 0
        self.price_factor = 1.0  # how far providers' reported costs have run above card prices
        self._reserved = Reservation(0.0, 0)
        self._in_flight = 0
        self._warned = False

    def _crossings(self, cost: float, tokens: int, calls: int) -> list[str]:
        c = self.config
        checks = [("max_cost_usd", c.max_cost_usd, self.cost_usd + cost, "${:.4f}"),
                  ("max_tokens", c.max_tokens, self.tokens + tokens, "{:d}"),
                  ("max_calls", c.max_calls, self.calls + calls, "{:d}")]
        return [f"budget.{name}={cap} would be crossed ({fmt.format(total)})"
                for name, cap, total, fmt in checks if cap is not None and total > cap]

    def admit(self, worst_cost: float, worst_tokens: int) -> Reservation:
        """Before a call: under a hard budget, refuse it if its worst case, on top of what is spent and
        what calls in flight have reserved, crosses a cap; else reserve that worst case until `settle`.
        The worst case is priced at the card, scaled up if providers have charged more than that."""
        reservation = Reservation(worst_cost * self.price_factor, worst_tokens)
        if self.config.kind == "hard":
            crossed = self._crossings(self._reserved.cost + reservation.cost,
                                      self._reserved.tokens + reservation.tokens, self._in_flight + 1)
            if crossed:
                raise BudgetExhausted("; ".join(crossed))
        self._hold(reservation, +1)
        return reservation

    def release(self, reservation: Reservation) -> None:
        """A call that spent nothing (it failed, or was cancelled) gives its reservation back."""
        self._hold(reservation, -1)

    def settle(self, reservation: Reservation, cost: float, tokens: int, card_cost: float | None = None) -> None:
        """After a call: its reservation gives way to what it really cost. `card_cost` is what it would
        have cost at card prices, when the provider billed it."""
        self.release(reservation)
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

    def _hold(self, reservation: Reservation, sign: int) -> None:
        self._reserved = Reservation(self._reserved.cost + sign * reservation.cost,
                                     self._reserved.tokens + sign * reservation.tokens)
        self._in_flight += sign
