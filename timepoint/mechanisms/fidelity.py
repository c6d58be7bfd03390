"""M1 heterogeneous fidelity: spend detail where the story's attention is.

Entities and their ties form a weighted graph: declared relationships weigh by type
(`RELATIONSHIP_TRUST`) and every pair present together at a timepoint gets a co-presence edge.
Eigenvector centrality on that graph, together with the roster role, picks each entity's
resolution level, and the level sets the estimated cost per entity. No model calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np

from ..scenario import RosterRelationship
from ..world import RELATIONSHIP_TRUST, Relationship, Resolution

if TYPE_CHECKING:
    from ..simulation import Simulation
    from ..world import Timepoint

ID = "M1"

Edges = dict[tuple[str, str], float]
"""Undirected weighted edges, keyed by the sorted pair of entity ids."""

COPRESENCE_WEIGHT = 0.4

# networkx's eigenvector_centrality defaults, which the reference uses.
_MAX_ITER = 100
_TOL = 1e-6


def _key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def edge_weight(relationship_type: str) -> float:
    """The weight of a declared tie; an unknown type weighs like "other"."""
    return RELATIONSHIP_TRUST.get(relationship_type, RELATIONSHIP_TRUST["other"])


def relationship_edges(relationships: Iterable[Relationship | RosterRelationship]) -> Edges:
    """Declared ties weighted by type (not by current trust: the graph measures narrative
    closeness, which a quarrel does not undo). Self-ties are dropped; a repeated pair keeps its
    heaviest declaration."""
    edges: Edges = {}
    for r in relationships:
        if r.a != r.b:
            key = _key(r.a, r.b)
            edges[key] = max(edges.get(key, 0.0), edge_weight(r.type))
    return edges


def copresence_edges(present: Iterable[str]) -> Edges:
    """A 0.4 edge for every pair present together at one timepoint."""
    return {_key(a, b): COPRESENCE_WEIGHT for a, b in combinations(sorted(set(present)), 2)}


def merge_edges(*edge_sets: Edges) -> Edges:
    """Union of edge sets; a pair in several keeps the largest weight.

    So a declared pair that also shares a room weighs max(type weight, 0.4): being in the room
    with an enemy (0.1) is at least as much contact as being in the room with a stranger, and
    a strong tie (ally 0.9) is not diluted by also meeting.
    """
    merged: Edges = {}
    for edges in edge_sets:
        for key, weight in edges.items():
            merged[key] = max(merged.get(key, 0.0), weight)
    return merged


def degree_centrality(nodes: list[str], edges: Edges) -> dict[str, float]:
    """Neighbour count over n − 1 (unweighted, as networkx); a lone node gets 1."""
    if len(nodes) <= 1:
        return {n: 1.0 for n in nodes}
    degree = dict.fromkeys(nodes, 0)
    for (a, b), weight in edges.items():
        if weight > 0 and a != b:
            degree[a] += 1
            degree[b] += 1
    return {n: degree[n] / (len(nodes) - 1) for n in nodes}


def centrality(nodes: Iterable[str], edges: Edges) -> dict[str, float]:
    """Weighted eigenvector centrality, as networkx's `eigenvector_centrality` computes it.

    Power iteration on (A + I) from a uniform start, at most 100 steps, tolerance n·1e-6; the
    result has unit Euclidean norm (not max 1), as in networkx. Falls back to degree centrality
    when the graph has no edges or the iteration does not converge. Edge endpoints missing from
    `nodes` are added, as networkx's `add_edge` would.
    """
    order = list(dict.fromkeys([*nodes, *(n for pair in edges for n in pair)]))
    index = {n: i for i, n in enumerate(order)}
    adjacency = np.zeros((len(order), len(order)))
    for (a, b), weight in edges.items():
        if a != b:
            adjacency[index[a], index[b]] = adjacency[index[b], index[a]] = weight
    if not order or not adjacency.any():
        return degree_centrality(order, edges)
    shifted = adjacency + np.eye(len(order))
    x = np.full(len(order), 1 / len(order))
    for _ in range(_MAX_ITER):
        nxt = shifted @ x
        nxt /= np.linalg.norm(nxt)
        if np.abs(nxt - x).sum() < len(order) * _TOL:
            return {n: float(nxt[i]) for n, i in index.items()}
        x = nxt
    return degree_centrality(order, edges)


def resolution_for(role: str, centrality: float) -> Resolution:
    """The level an entity is simulated at: central primaries are trained, the rest step down."""
    if role == "primary":
        return "trained" if centrality > 0.5 else "dialog"
    if role == "secondary":
        return "dialog" if centrality > 0.3 else "graph"
    if role == "background":
        return "scene"
    if role == "environment":
        return "tensor_only"
    raise ValueError(f"unknown role {role!r}; roles are primary, secondary, background, environment")


def at_timepoint(sim: Simulation, tp: Timepoint) -> bool:
    """Everyone's resolution from their role and their centrality in the graph of declared ties
    and of who has shared a room so far, this timepoint included."""
    rooms = [t.entities_present for t in sim.timepoints if t.timeline_id == tp.timeline_id] + [tp.entities_present]
    edges = merge_edges(relationship_edges(sim.relationships.values()), *(copresence_edges(r) for r in rooms))
    scores = centrality(list(sim.entities), edges)
    for e in sim.entities.values():
        e.resolution = resolution_for(e.role, scores[e.id])
    tp.metadata["centrality"] = {eid: round(c, 4) for eid, c in scores.items()}
    return True
