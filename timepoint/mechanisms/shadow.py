"""ADPRS in shadow: compare the waveform's predicted band with actual resolutions, gate dialogs, fit envelopes.

Reference §6. The waveform φ itself lives in `timepoint.adprs`; here it is only evaluated:
- `evaluate` reports how far the band predicted by φ is from the resolution an entity really had;
- `gate` picks who may join a dialog at a timepoint from their φ values;
- `fit_envelope` fits A, P, S and baseline to the activation an entity showed over a run, so a later
  run can start from a learned envelope. Time is normalised: τ = i/(n−1) over the n timepoints,
  mapped onto the envelope's own span (t0 + τ·D) so that `adprs.phi` stays the single formula.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from ..adprs import Envelope, band, phi
from ..numeric import clamp
from ..world import CognitiveState, Resolution

if TYPE_CHECKING:
    from ..simulation import Simulation
    from ..world import Timepoint

ShadowRecord = tuple[str, str, float, Resolution]  # entity id, timepoint id, φ, actual resolution

# Resolution order; full_detail sits with trained because the bands stop at trained.
ORDINAL: dict[str, int] = {"tensor_only": 0, "scene": 1, "graph": 2, "dialog": 3, "trained": 4, "full_detail": 4}
BAND_MIDPOINTS = (0.1, 0.3, 0.5, 0.7, 0.9)  # indexed by ordinal
SILENT_BANDS = ("tensor_only", "scene")  # too little presence to speak

# Fitting: the parameters fitted and their bounds; D, t0 and R keep Envelope's defaults.
FIT_PARAMS = ("A", "P", "S", "baseline")
FIT_BOUNDS = [(0.0, 1.0), (0.5, 8.0), (0.0, 1.0), (0.0, 1.0)]
FIT_LOWER, FIT_UPPER = (tuple(side) for side in zip(*FIT_BOUNDS))
MIN_FIT_POINTS = 5


def activation(cog: CognitiveState) -> float:
    """An entity's observed activation in [0, 1]: the target φ should have matched at that moment."""
    value = 0.4 * (cog.valence + 1) / 2 + 0.35 * cog.arousal + 0.25 * cog.energy / 100
    return clamp(value, 0.0, 1.0)


def tau_at(index: int, count: int) -> float:
    """Normalised time of the index-th of count timepoints (0 when there is only one)."""
    return index / (count - 1) if count > 1 else 0.0


def phi_at_tau(env: Envelope, tau: float) -> float:
    """φ at normalised time τ, computed by `adprs.phi` at t0 + τ·D so there is one formula."""
    return phi(env, env.t0 + timedelta(milliseconds=tau * env.D))


def evaluate(records: list[ShadowRecord]) -> dict:
    """Shadow report: how often, and by how many bands, φ's prediction missed the actual resolution."""
    rows = []
    for entity_id, timepoint_id, value, actual in records:
        predicted = band(value)
        rows.append({
            "entity_id": entity_id,
            "timepoint_id": timepoint_id,
            "phi": value,
            "predicted_band": predicted,
            "actual_resolution": actual,
            "divergence": ORDINAL[predicted] - ORDINAL[actual],
            "continuous_divergence": value - BAND_MIDPOINTS[ORDINAL[actual]],
        })
    sizes = [abs(row["divergence"]) for row in rows]
    divergent = sum(1 for size in sizes if size)
    return {
        "total_evaluations": len(rows),
        "divergent_count": divergent,
        "divergence_rate_pct": 100 * divergent / len(rows) if rows else 0.0,
        "mean_divergence": sum(sizes) / len(rows) if rows else 0.0,
        "max_divergence": max(sizes, default=0),
        "rows": rows,
    }


def gate(phis: dict[str, float]) -> list[str]:
    """Entities admitted to a dialog at one timepoint; [] means skip it, as nobody has enough presence to talk."""
    bands = {entity_id: band(value) for entity_id, value in phis.items()}
    if all(name == "tensor_only" for name in bands.values()):
        return []
    admitted = [entity_id for entity_id, name in bands.items() if name not in SILENT_BANDS]
    return admitted if len(admitted) >= 2 else []


def fit_envelope(points: list[float], prior: Envelope | None = None) -> tuple[Envelope, float]:
    """Fit A, P, S, baseline to activations at τ = i/(n−1); returns the envelope and its MSE.

    Warm start (curve_fit from `prior`) refines a previous run's envelope cheaply; the cold start
    (seeded differential evolution) searches globally because |sin| makes the MSE multimodal in P.
    Fewer than 5 points is too little to fit: the default envelope comes back with MSE nan.
    """
    if len(points) < MIN_FIT_POINTS:
        return Envelope(), math.nan
    from scipy.optimize import curve_fit, differential_evolution  # 40 MB a run needs only at its end
    base = Envelope()
    taus = [tau_at(i, len(points)) for i in range(len(points))]
    observed = np.asarray(points, dtype=float)

    def envelope(params) -> Envelope:
        return base.model_copy(update=dict(zip(FIT_PARAMS, (float(p) for p in params))))

    def curve(params) -> np.ndarray:
        env = envelope(params)
        return np.array([phi_at_tau(env, tau) for tau in taus])

    def mse(params) -> float:
        return float(np.mean((curve(params) - observed) ** 2))

    params = None
    if prior is not None:
        start = np.clip([getattr(prior, name) for name in FIT_PARAMS], FIT_LOWER, FIT_UPPER)
        try:
            params, _ = curve_fit(lambda _x, *p: curve(p), taus, observed, p0=start,
                                  bounds=(FIT_LOWER, FIT_UPPER), maxfev=5000)
        except (RuntimeError, ValueError):
            params = None
    if params is None:
        params = differential_evolution(mse, FIT_BOUNDS, maxiter=100, tol=1e-4, seed=42).x
    params = np.clip(params, FIT_LOWER, FIT_UPPER)  # guard against float noise at the bounds
    return Envelope(**dict(zip(FIT_PARAMS, map(float, params)))), mse(params)


ID = "M1"  # the waveform is the fidelity mechanism's forecast of who deserves detail


def admit(sim: Simulation, tp: Timepoint, participants: list[str]) -> list[str]:
    """Gate the dialog by φ for entities with an envelope (the others count as fully present), and
    record φ beside the resolution each present entity really had, for the shadow report."""
    envelopes = {eid: sim.entities[eid].adprs for eid in tp.entities_present if sim.entities[eid].adprs}
    if not envelopes:
        return participants
    phis = {eid: phi(env, tp.timestamp) for eid, env in envelopes.items()}
    tp.metadata["adprs"] = {eid: {"phi": round(value, 4), "band": band(value), "actual": sim.entities[eid].resolution}
                            for eid, value in phis.items()}
    return gate({p: phis.get(p, 1.0) for p in participants})


def report(timepoints: list[dict], states: list[dict], fits: dict | None = None) -> dict:
    """The shadow report of a run: φ's band against the resolution each entity really had (from the
    timepoints' records, see `admit`), and an envelope fitted to each entity's activation over the
    main timeline, for a later run to start from. Fitting takes seconds: `fits` already made are used as they are."""
    records = [(eid, tp["timepoint_id"], r["phi"], r["actual"]) for tp in timepoints
               for eid, r in json.loads(tp["metadata"] or "{}").get("adprs", {}).items()]
    if fits is not None:
        return {**evaluate(records), "fits": fits}
    main = {tp["timepoint_id"] for tp in timepoints if tp["timeline_id"] == "main"}
    trajectories: dict[str, list[float]] = {}
    for row in sorted(states, key=lambda r: r["seq"]):
        if row["timepoint_id"] in main:
            cog = CognitiveState.model_validate_json(row["cognitive"])
            trajectories.setdefault(row["entity_id"], []).append(activation(cog))
    fits = {}
    for eid, points in trajectories.items():
        if len(points) >= MIN_FIT_POINTS:
            envelope, mse = fit_envelope(points)
            fits[eid] = {**{k: round(getattr(envelope, k), 4) for k in FIT_PARAMS}, "mse": round(mse, 6),
                         "points": len(points)}
    return {**evaluate(records), "fits": fits}
