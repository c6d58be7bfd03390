"""The live state of one run, and the writes that keep the run store in step with it."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from .config import ModeConfig, RunConfig
from .llm import CallFailed, ModelGateway
from .mechanisms import plugins
from .progress import Progress
from .scenario import Template
from .store import RunStore
from .world import (
    Entity,
    ExposureEvent,
    Relationship,
    Timepoint,
    advance,
    alignment,
    causal_ancestry,
    tensor_with_cognitive,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class Simulation:
    def __init__(self, config: RunConfig, template: Template, mode: ModeConfig, store: RunStore,
                 gateway: ModelGateway, progress: Progress):
        self.config = config
        self.template = template
        self.mode_config = mode
        self.mode = mode.name
        self.store = store
        self.gateway = gateway
        self.progress = progress
        self.rng = random.Random(config.seed)
        self.enabled = set(config.mechanisms.enabled)
        self.plugins = plugins(self.enabled)
        self.title = template.scene.title or template.title
        self.location = template.scene.location or ""
        self.opening_event = template.scene.opening_event or ""
        self.entities: dict[str, Entity] = {}
        self.relationships: dict[tuple[str, str], Relationship] = {}
        self.exposures: dict[str, list[ExposureEvent]] = {}
        self.timepoints: list[Timepoint] = []
        self.after_timepoint: Callable[[Timepoint], None] | None = None  # e.g. live dataset exports
        self.fire("M18", "model_selection")  # every role's model chain was chosen and checked before this

    # -- time -----------------------------------------------------------------------------

    def time_of(self, index: int) -> datetime:
        span = self.template.time
        return advance(span.start, span.resolution, span.step * index)

    def ancestry(self, tp: Timepoint) -> set[str]:
        """The ids of `tp` and every timepoint it descends from by `causal_parent`."""
        by_id = {t.id: t for t in self.timepoints}
        return causal_ancestry(by_id, tp)

    def add_timepoint(self, tp: Timepoint) -> None:
        """A timepoint the run lives through."""
        self.timepoints.append(tp)
        self.keep_timepoint(tp)
        self.progress.set_step(f"{tp.id} of {self.template.timepoints}")

    def keep_timepoint(self, tp: Timepoint) -> None:
        """Store a timepoint. M7 is its causal link: the edge from its parent and why it follows; with M7
        off the timepoint keeps only its place in the timeline (its parent), not a claimed cause."""
        if "M7" not in self.enabled:
            tp.causal_link = ""
        self.store.save_timepoint(tp, causal="M7" in self.enabled)
        if tp.causal_parent:
            self.fire("M7", "causal_link", tp.id)

    # -- knowledge ------------------------------------------------------------------------

    def expose(self, events: list[ExposureEvent]) -> None:
        """Record what entities came to know; M3 is the provenance of every item. With M3 off, knowledge
        does not flow: each entity has only the knowledge its template gave it, and no exposure rows."""
        if "M3" not in self.enabled:
            events = [e for e in events if e.event_type == "initial"]
        if not events:
            return
        for e in events:
            self.exposures.setdefault(e.entity_id, []).append(e)
        if "M3" in self.enabled:
            self.store.add_exposures(events)
            self.fire("M3", events[0].event_type, events[0].timepoint_id)

    def forget(self, entity_id: str, information: str) -> None:
        """A counterfactual in which the entity never learned this: its exposure is gone, not just hidden."""
        self.exposures[entity_id] = [e for e in self.exposures.get(entity_id, []) if e.information != information]
        self.store.remove_exposure(entity_id, information)

    def known(self, entity_id: str) -> set[str]:
        return {e.information for e in self.exposures.get(entity_id, [])}

    # -- state ----------------------------------------------------------------------------

    def snapshot(self, tp: Timepoint) -> None:
        """End of a timepoint: sync tensors, refresh alignments, persist states."""
        counts = {eid: len(self.known(eid)) for eid in self.entities}
        for e in self.entities.values():
            e.tensor = tensor_with_cognitive(e.tensor, e.cognitive, counts[e.id])
        if "M13" in self.enabled:  # alignment: how far two people's knowledge overlaps
            moved = False
            for (a, b), rel in self.relationships.items():
                value = alignment(self.known(a), self.known(b))
                moved, rel.alignment = moved or value != rel.alignment, value
            if moved:
                self.fire("M13", "alignment", tp.id)
        entities = list(self.entities.values())
        self.store.save_entities(entities)
        self.store.save_relationships(list(self.relationships.values()), tp.id)
        self.store.snapshot_states(tp.id, tp.index, entities, counts)

    def snapshot_opening(self, tp: Timepoint) -> None:
        """Before the first timepoint is lived (before its mechanisms act): everyone as they go into it,
        stored as `pre_<its id>`, so "as of" the first timepoint reads a snapshot like every later one
        (history.py). Nothing is changed, only recorded."""
        opening = f"pre_{tp.id}"
        self.store.save_relationships(list(self.relationships.values()), opening)
        self.store.snapshot_states(opening, tp.index - 1, list(self.entities.values()),
                                   {eid: len(self.known(eid)) for eid in self.entities})

    # -- degrade, don't die -----------------------------------------------------------------

    async def attempt(self, unit: str, work: Awaitable[T], timepoint_id: str | None = None) -> T | None:
        """Await a unit of work that rests on model calls; if one failed for good, the unit is skipped
        (None) and recorded as a gap, and the run goes on."""
        try:
            return await work
        except CallFailed as exc:
            self.gap(unit, exc, timepoint_id)
            return None

    def gap(self, unit: str, reason: str | CallFailed, timepoint_id: str | None = None) -> None:
        """Record skipped work: a `gaps` row, counted in run.json and the summary."""
        self.store.record_gap(unit, str(reason), timepoint_id, getattr(reason, "role", None),
                              getattr(reason, "request_key", None))
        log.warning("skipped %s%s: %s", unit, f" at {timepoint_id}" if timepoint_id else "", reason)

    # -- mechanisms -----------------------------------------------------------------------

    def at_timepoint(self, tp: Timepoint) -> None:
        if not self.timepoints:
            self.snapshot_opening(tp)
        for plugin in self.plugins:
            hook = getattr(plugin, "at_timepoint", None)
            if hook and hook(self, tp):
                self.fire(plugin.ID, "at_timepoint", tp.id)

    def finish(self) -> None:
        """The mode is done: mechanisms that judge the whole run (validators) have their say."""
        for plugin in self.plugins:
            hook = getattr(plugin, "at_end", None)
            if hook and hook(self):
                self.fire(plugin.ID, "at_end")

    def admit(self, tp: Timepoint, participants: list[str]) -> list[str]:
        for plugin in self.plugins:
            hook = getattr(plugin, "admit", None)
            if hook:
                admitted = hook(self, tp, participants)
                if admitted != participants:
                    self.fire(plugin.ID, "admit", tp.id)
                participants = admitted
        return participants

    def fire(self, mechanism: str, hook: str, timepoint_id: str | None = None) -> None:
        if mechanism in self.enabled:
            self.store.record_mechanism(mechanism, hook, timepoint_id)
