"""M2 progressive training and M5 query-driven lazy resolution: detail is spent where it is asked for.

A question about an entity needs a resolution by what it asks (M5): general things a scene,
knowledge and relationships a graph, actions a dialog, the entity's own voice a trained model. An
entity below that — or one asked about often enough for its level, or central but barely trained
(M2) — is elevated: it gains new knowledge items, recorded as `learned` exposures, and its level.
"""

from __future__ import annotations

from typing import Literal, get_args

from ..world import Resolution

RESOLUTION_ORDER: tuple[Resolution, ...] = get_args(Resolution)  # lowest to highest
Intent = Literal["general", "knowledge", "relationships", "actions", "dialog"]
REQUIRED: dict[str, Resolution] = {"general": "scene", "knowledge": "graph", "relationships": "graph",
                                   "actions": "dialog", "dialog": "trained"}
QUERY_THRESHOLD: dict[str, int] = {"tensor_only": 5, "scene": 10, "graph": 15, "dialog": 25, "trained": 50}
NEW_ITEMS: dict[str, int] = {"scene": 3, "graph": 5, "dialog": 8, "trained": 12, "full_detail": 12}
MIN_ITEM_LENGTH = 10


def rank(level: str) -> int:
    return RESOLUTION_ORDER.index(level)


def next_level(level: Resolution) -> Resolution:
    return RESOLUTION_ORDER[min(rank(level) + 1, len(RESOLUTION_ORDER) - 1)]


def needs_retraining(centrality: float, training_count: int, query_count: int, level: Resolution) -> bool:
    """M2: a central entity trained fewer than three times, or one asked about past its level's threshold."""
    return (centrality > 0.3 and training_count < 3) or query_count > QUERY_THRESHOLD.get(level, 10 ** 9)


def target_level(level: Resolution, intent: str, retrain: bool) -> Resolution:
    """The level an entity must reach to answer: what the question needs (M5), or one up when
    it is due for retraining (M2), whichever is higher; never lower than it is."""
    wanted = max(rank(level), rank(REQUIRED[intent]), rank(next_level(level)) if retrain else 0)
    return RESOLUTION_ORDER[wanted]


def kept_items(items: list[str], level: Resolution) -> list[str]:
    """New knowledge worth keeping: long enough to say something, as many as the level grants."""
    return [i for i in items if len(i.strip()) > MIN_ITEM_LENGTH][:NEW_ITEMS.get(level, 0)]
