"""M1 heterogeneous fidelity: spend detail where the story's attention is.

Entities and their ties form a weighted graph: declared relationships weigh by type
(`RELATIONSHIP_TRUST`) and every pair present together at a timepoint gets a co-presence edge.
Eigenvector centrality on that graph, together with the roster role, picks each entity's
resolution level. No model calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations
from typing import TYPE_CHECKING

from ..scenario import RosterRelationship
from ..world import RELATIONSHIP_TRUST, Relationship, Resolution

if TYPE_CHECKING:
    from ..simulation import Simulation
    from ..world import Timepoint

ID = "M1"

Edges = dict[tuple[str, str], float]
"""Undirected weighted edges, keyed by the sorted pair of entity ids."""

COPRESENCE_WEIGHT = 0.4

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


def centrality(nodes: Iterable[str], edges: Edges) -> dict[str, float]:
    """Weighted eigenvector centrality (networkx: unit Euclidean norm, not max 1) of the graph of
    `nodes` and the edges that carry weight (self-ties dropped; endpoints missing from `nodes`
    added). Degree centrality when there is no edge or the power iteration does not converge."""
    import networkx as nx  # loaded when a run first measures its cast, not with every import

    graph = nx.Graph()
    graph.add_nodes_from(nodes)
    graph.add_weighted_edges_from((a, b, w) for (a, b), w in edges.items() if a != b and w > 0)
    if graph.number_of_edges() == 0:
        return nx.degree_centrality(graph)
    try:
        return nx.eigenvector_centrality(graph, weight="weight")
    except nx.PowerIterationFailedConvergence:
        return nx.degree_centrality(graph)


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
