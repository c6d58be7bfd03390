"""Numeric helpers for every layer: the lowest module, importing nothing of Timepoint's."""

from __future__ import annotations


def clamp(x: float, lo: float, hi: float) -> float:
    """x held within [lo, hi]: every bounded quantity (a tensor value, trust, a sampling knob) stays in range."""
    return max(lo, min(hi, x))
