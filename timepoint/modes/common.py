"""What every mode does at a timepoint on the timeline it settles on: people experience the event,
talk it through, and carry the consequences."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from ..config import DialogConfig
from ..dialog.effects import MemoryNote, after_dialog, outcome_schema
from ..concurrency import gather_all
from ..dialog.graph import SemanticCheck, TurnDraft, plan_schema, run_dialog, semantic_check, steering_schema
from ..dialog.structure import steering_calls, turn_bounds
from ..estimate import PlannedCall
from ..numeric import clamp
from ..scenario import Template
from ..simulation import Simulation
from ..world import Dialog, ExposureEvent, Timepoint

log = logging.getLogger(__name__)


def state_fields(entity_ids: list[str], what: str, link: str, length: int = 400) -> dict:
    """The fields of every generated state: what happens, its key events, who is involved (only the
    cast), and why it follows — for `create_model`."""
    return dict(
        description=(str, Field(max_length=length, description=what)),
        key_events=(list[Annotated[str, Field(max_length=100)]], Field(min_length=1, max_length=3)),
        entities_involved=(list[Literal[tuple(entity_ids)]],
                           Field(min_length=1, max_length=len(entity_ids), json_schema_extra={"uniqueItems": True})),
        causal_link=(str, Field(max_length=200, description=link)),
    )


@dataclass
class Moment:
    """A state a mode settled on, before it is a timepoint: when, what, who, why, and what the mode
    knows of it (act, tension, cycle, branch...)."""

    at: datetime
    description: str
    entities: list[str]
    causal_link: str
    importance: float = 0.5
    metadata: dict = field(default_factory=dict)


def linked(moments: list[Moment], timeline: str, prefix: str = "", parent: str | None = None,
           first_index: int = 0) -> list[Timepoint]:
    """Chronological moments as timepoints, each the causal child of the one before; the first
    hangs from `parent` (a branch point on another timeline, or nothing)."""
    tps = []
    for index, m in enumerate(moments, start=first_index):
        tp = Timepoint(id=f"{prefix}tp_{index:03d}", index=index, timestamp=m.at, event=m.description,
                       entities_present=m.entities, causal_parent=parent, causal_link=m.causal_link,
                       importance=round(clamp(m.importance, 0.0, 1.0), 3), timeline_id=timeline,
                       metadata=m.metadata)
        tps.append(tp)
        parent = tp.id
    return tps


async def follow(sim: Simulation, moments: list[Moment]) -> None:
    """Live through the chosen timeline, origin first, so knowledge flows with causality."""
    for tp in linked(moments, "main"):
        await live_through(sim, tp)


def keep(sim: Simulation, moments: list[Moment], timeline: str, prefix: str, parent: str | None = None,
         first_index: int = 0) -> None:
    """A path dialogs do not follow: its timepoints and causal links, queryable like the chosen one,
    stored in one step."""
    with sim.store.step():
        for tp in linked(moments, timeline, prefix, parent, first_index):
            sim.keep_timepoint(tp)


def participants_of(sim: Simulation, present: list[str]) -> list[str]:
    cap = sim.config.dialog.max_participants
    if len(present) <= cap:
        return present
    chosen = set(sim.rng.sample(present, cap))
    return [p for p in present if p in chosen]


async def live_through(sim: Simulation, tp: Timepoint) -> Dialog | None:
    """Live through `tp` as one step of the store: everything it writes commits together, or, if it
    fails, none of it does."""
    with sim.store.step():
        dialog = await _live(sim, tp)
    if sim.after_timepoint:  # the live datasets read what the step committed
        sim.after_timepoint(tp)
    return dialog


async def _live(sim: Simulation, tp: Timepoint) -> Dialog | None:
    """Let the mechanisms act on `tp` and say who may talk, record it, give everyone present an
    `experienced` event, run its dialog and aftermath, and snapshot everyone's state there."""
    sim.at_timepoint(tp)
    participants = participants_of(sim, sim.admit(tp, tp.entities_present))
    sim.add_timepoint(tp)
    log.info("%s %s: %s (%d present)", tp.id, tp.timestamp, tp.event[:100], len(tp.entities_present))
    sim.expose([ExposureEvent(entity_id=eid, event_type="experienced", information=f"Experienced: {tp.event}",
                              source="experience", timestamp=tp.timestamp, confidence=1.0, timepoint_id=tp.id)
                for eid in tp.entities_present])
    dialog = None
    if len(participants) >= 2:
        dialog = await run_dialog(sim, tp, participants)
        if len(dialog.turns) < 2:  # not a conversation: dropped, and the timepoint still stands
            sim.gap("dialog", f"only {len(dialog.turns)} turn(s) were written", tp.id)
            dialog = None
        else:
            await gather_all(after_dialog(sim, tp, dialog), semantic_check(sim, tp, dialog))
            sim.store.save_dialog(dialog)
            log.info("%s dialog: %d turns among %s", tp.id, len(dialog.turns), ", ".join(participants))
    sim.snapshot(tp)
    return dialog


def at_least_two(present: list[str], fallback: list[str]) -> list[str]:
    """Who is present, de-duplicated; topped up from `fallback` so a dialog has two people."""
    people = list(dict.fromkeys(present))
    for eid in fallback:
        if len(people) >= 2:
            break
        if eid not in people:
            people.append(eid)
    return people


def dialog_plan(template: Template, dialog: DialogConfig, opening: int, later: int) -> list[PlannedCall]:
    """The calls of `opening` dialogs with everyone and `later` dialogs among whoever the model puts
    there (two at least: expect the midpoint), each with its steering, turns, judge and aftermath."""
    everyone = min(len(template.entities), dialog.max_participants)
    ids = [e.id for e in template.entities]
    horizon = dialog.steering_horizon
    steering = steering_schema(ids) if horizon == 1 else plan_schema(ids, horizon)
    roster = max(len(e.model_dump_json()) for e in template.entities) + 2000  # both layers and what they learn
    calls = []
    for participants, dialogs in ((everyone, opening), ((2 + everyone) / 2, later)):
        lo, hi = turn_bounds(round(participants), False, dialog)
        turns = (lo + hi) / 2
        history = 150 * min(turns, 8) / 2
        calls += [
            PlannedCall("steering", steering_calls(turns, horizon) * dialogs, 600 * participants + 900, steering),
            PlannedCall("dialog", turns * dialogs, roster + 400 + history, TurnDraft),
            PlannedCall("judge", dialog.semantic_check * dialogs, 150 * turns + 300, SemanticCheck),
            PlannedCall("extraction", dialogs, 150 * turns + 400, outcome_schema(ids)),
            PlannedCall("summary", 2 * participants * dialogs, 150 * turns + 400, MemoryNote,  # memory, rumination
                        "M15"),
        ]
    return calls
