"""The ADPRS activation waveform φ(t) of an entity and its resolution bands (reference §6)."""

from __future__ import annotations

import math
from datetime import datetime

from pydantic import BaseModel, Field

from .numeric import clamp

YEAR_MS = 365.25 * 24 * 3600 * 1000
BANDS = [(0.2, "tensor_only"), (0.4, "scene"), (0.6, "graph"), (0.8, "dialog")]


class Envelope(BaseModel):
    """Asymptote A, duration D (ms), period P, recurrence R (ms, 0 = none), spread S, start t0, baseline."""

    A: float = Field(0.7, ge=0, le=1)
    D: float = Field(YEAR_MS, gt=0)
    P: float = Field(2.0, ge=0)
    R: float = Field(0.0, ge=0)
    S: float = Field(0.8, ge=0, le=1)
    t0: datetime = datetime(2026, 1, 1)
    baseline: float = Field(0.1, ge=0, le=1)


def phi(env: Envelope, at: datetime) -> float:
    """φ = |sin(2πPτ)|·(1−τ)^(3(1−A))·S + (1−S)·baseline, clamped to [0, 1]; baseline outside [t0, t0+D]."""
    elapsed = (at - env.t0).total_seconds() * 1000
    if elapsed < 0:
        return env.baseline
    if env.R > 0:
        elapsed %= env.R
    if elapsed > env.D:
        return env.baseline
    tau = elapsed / env.D
    value = abs(math.sin(2 * math.pi * env.P * tau)) * (1 - tau) ** (3 * (1 - env.A)) * env.S \
        + (1 - env.S) * env.baseline
    return clamp(value, 0.0, 1.0)


def band(value: float) -> str:
    return next((name for cap, name in BANDS if value < cap), "trained")
