"""M6 TTM tensor compression: a few numbers per entity instead of twenty, and how mature a tensor is.

Every entity's tensor is 20 numbers (context 8, biology 4, behaviour 8). For entities kept at
tensor-only resolution the reference stores only a compressed code, so `compress` projects the
cast's stacked tensors with PCA (centred: what sets entities apart) and truncated SVD (uncentred:
keeps the common baseline too), and reports how much variance each component keeps.

`maturity` is the reference's quality gate for a tensor: populated, varied, in range, trained and
finite. A tensor at `OPERATIONAL` (0.95) or above is ready to drive dialog. No LLM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.decomposition import PCA, TruncatedSVD

from ..numeric import clamp
from ..world import TTMTensor

if TYPE_CHECKING:
    from ..simulation import Simulation

ID = "M6"

OPERATIONAL = 0.95
DIMENSIONS = 20
# Values the reference's population and training steps can produce: metadata multipliers are
# clipped to [0, 2] and training noise to [0.01, 1.5]. A vector outside [0, 2] is incoherent.
COHERENT_RANGE = (0.0, 2.0)
FULL_TRAINING = 10


def _vectors(t: TTMTensor) -> list[np.ndarray]:
    return [np.asarray(v, dtype=float) for v in (t.context, t.biology, t.behavior)]


def stacked(tensors: list[TTMTensor]) -> np.ndarray:
    """The tensors as an (entities × 20) matrix: context, biology, behaviour side by side."""
    return np.array([np.concatenate(_vectors(t)) for t in tensors], dtype=float).reshape(-1, DIMENSIONS)


def compress(tensors: list[TTMTensor], n_components: int = 3) -> dict:
    """Codes of `n_components` numbers per entity (in input order) by PCA and by truncated SVD.

    Returns {"n_components", "codes": {"pca", "svd"}, "explained_variance_ratio": {"pca", "svd"}}.
    There cannot be more components than entities or dimensions, so n_components is capped at
    min(n_components, entities, 20). With no spread between entities (one entity, or identical
    tensors) the variance ratios are 0 rather than undefined.
    """
    if n_components < 1:
        raise ValueError(f"n_components must be at least 1, not {n_components}")
    x = stacked(tensors)
    k = min(n_components, x.shape[0], DIMENSIONS)
    if k == 0:
        return {"n_components": 0, "codes": {"pca": [], "svd": []},
                "explained_variance_ratio": {"pca": [], "svd": []}}
    codes, ratios = {}, {}
    for name, model in (("pca", PCA(n_components=k, svd_solver="full")),
                        ("svd", TruncatedSVD(n_components=k, random_state=0))):
        with np.errstate(divide="ignore", invalid="ignore"):
            codes[name] = np.nan_to_num(model.fit_transform(x)).tolist()
            ratios[name] = np.nan_to_num(model.explained_variance_ratio_).tolist()
    return {"n_components": k, "codes": codes, "explained_variance_ratio": ratios}


def maturity(tensor: TTMTensor, training_cycles: int, training_complete: bool) -> float:
    """How ready a tensor is, in [0, 1]:

    0.25·coverage (share of non-zero values) + 0.20·variance (per vector min(var/0.1, 1), averaged
    over the three vectors as in the reference) + 0.25·coherence (×0.8 per vector with a value
    outside `COHERENT_RANGE`) + 0.15·min(cycles/10, 1) (halved while training is incomplete)
    + 0.15 when every value is finite. Our own tensors stay in [0, 1], but the reference's range
    [0, 2] is used so that values the training steps legitimately produce are not penalised.
    """
    vectors = _vectors(tensor)
    values = np.concatenate(vectors)
    coverage = float(np.count_nonzero(values)) / values.size
    with np.errstate(over="ignore", invalid="ignore"):
        spreads = [min(float(np.var(v)) / 0.1, 1.0) if np.all(np.isfinite(v)) else 0.0 for v in vectors]
    variance = float(np.nan_to_num(np.mean(spreads)))
    low, high = COHERENT_RANGE
    out_of_range = sum(bool(np.any((v < low) | (v > high))) for v in vectors)
    coherence = 0.8 ** out_of_range
    training = clamp(training_cycles / FULL_TRAINING, 0.0, 1.0) * (1.0 if training_complete else 0.5)
    finite = 1.0 if np.all(np.isfinite(values)) else 0.0
    score = 0.25 * coverage + 0.20 * variance + 0.25 * coherence + 0.15 * training + 0.15 * finite
    return round(clamp(score, 0.0, 1.0), 6)


def at_end(sim: Simulation) -> bool:
    """Compress every entity's final tensor and rate its maturity; each timepoint an entity lived
    through counts as one refinement of its tensor."""
    entities = list(sim.entities.values())
    if not entities:
        return False
    codes = compress([e.tensor for e in entities])
    lived = {e.id: sum(e.id in tp.entities_present for tp in sim.timepoints) for e in entities}
    sim.store.save_compression({
        e.id: ({method: codes["codes"][method][i] for method in ("pca", "svd")},
               round(maturity(e.tensor, lived[e.id], lived[e.id] >= FULL_TRAINING), 4))
        for i, e in enumerate(entities)})
    return True
