"""A run store's rows, indexed the way exporters read them: the main timeline in order, entities,
states by (entity, timepoint), exposures, relationships, dialogs and their turns."""

from __future__ import annotations

import json

from ..store import RunStore


class RunView:
    """The store's rows, indexed the way the formatter needs them."""

    def __init__(self, store: RunStore):
        self.run = store.run()
        self.timepoints = [tp for tp in store.rows("timepoints", "idx") if tp["timeline_id"] == "main"]
        for tp in self.timepoints:
            tp["entities_present"] = json.loads(tp["entities_present"])
        self.by_tp = {tp["timepoint_id"]: tp for tp in self.timepoints}
        self.entities = {e["entity_id"]: e for e in store.rows("entities")}
        self.states = {(s["entity_id"], s["timepoint_id"]): s for s in store.rows("entity_states")}
        self.exposures = store.rows("exposure_events", "id")
        self.relationships = {(r["entity_a"], r["entity_b"]): r for r in store.rows("relationships")}
        self.dialogs = {d["timepoint_id"]: d for d in store.rows("dialogs")}
        self.turns: dict[str, list[dict]] = {}
        for t in store.rows("turns", "dialog_id, idx"):
            self.turns.setdefault(t["dialog_id"], []).append(t)

    def known_by(self, entity_id: str, upto_idx: int) -> list[dict]:
        """Exposures of an entity up to and including timepoint index `upto_idx` (initial ones count)."""
        def idx(ev: dict) -> int:
            tp = self.by_tp.get(ev["timepoint_id"])
            return tp["idx"] if tp else -1
        return [e for e in self.exposures if e["entity_id"] == entity_id and idx(e) <= upto_idx]

    def ancestors(self, tp_id: str, limit: int = 5) -> list[dict]:
        chain, cur = [], self.by_tp.get(tp_id)
        while cur and len(chain) < limit:
            chain.append(cur)
            cur = self.by_tp.get(cur["causal_parent"]) if cur["causal_parent"] else None
        return list(reversed(chain))
