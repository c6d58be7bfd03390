"""FORWARD: time runs on from the opening event; each timepoint's event follows from the last dialog."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import BaseModel, Field, create_model

from ..config import DialogConfig
from ..dialog.effects import MemoryNote, after_dialog, outcome_schema
from ..dialog.graph import SemanticCheck, TurnDraft, run_dialog, steering_schema
from ..dialog.prompts import spoken_time, transcript
from ..dialog.structure import turn_bounds
from ..estimate import PlannedCall
from ..scenario import Template
from ..scene import EntityFill
from ..simulation import Simulation
from ..world import Dialog, ExposureEvent, Timepoint

log = logging.getLogger(__name__)

# Ratings are words, not floats: a grammar can enforce an enum but not a numeric range.
IMPORTANCE = {"minor": 0.25, "notable": 0.5, "major": 0.75, "pivotal": 1.0}


def next_event_schema(entity_ids: list[str]) -> type[BaseModel]:
    """Who is present is constrained to the cast, so the model cannot invent people."""
    return create_model(
        "NextEvent",
        event=(str, Field(max_length=400, description="What happens now, concretely, in one or two sentences")),
        causal_link=(str, Field(max_length=240, description="Why this follows from what just happened")),
        entities_present=(list[Literal[tuple(entity_ids)]],
                          Field(min_length=2, max_length=len(entity_ids), json_schema_extra={"uniqueItems": True})),
        importance=(Literal[tuple(IMPORTANCE)], Field(description="How much this moment matters to the story")),
    )


async def _next_event(sim: Simulation, index: int, parent: Timepoint, dialog: Dialog | None) -> Timepoint:
    ids = list(sim.entities)
    cast = "\n".join(f"- {e.id}: {e.name}, {e.title}" for e in sim.entities.values())
    earlier = "\n".join(f"- {spoken_time(tp.timestamp)}: {tp.event}" for tp in sim.timepoints[-5:])
    outcome = f"Outcome of the last conversation: {dialog.summary}\nLast lines:\n{transcript(sim, dialog.turns, 4)}" \
        if dialog else "There was no conversation."
    when = sim.time_of(index)
    reply = await sim.gateway.structured("steering", [
        {"role": "system", "content": "You advance a social simulation by one step. The next event must follow "
                                      "causally from what just happened. Answer in JSON."},
        {"role": "user", "content": f"Premise: {sim.template.premise}\nCast:\n{cast}\n\nSo far:\n{earlier}\n\n"
                                    f"{outcome}\n\nIt is now {spoken_time(when)} at {sim.location}. "
                                    "What happens next, and who is present?"},
    ], next_event_schema(ids), temperature=0.7, frequency_penalty=0.3)
    present = list(dict.fromkeys(reply.entities_present))
    for eid in parent.entities_present:  # a model that repeats a name still means two people
        if len(present) >= 2:
            break
        if eid not in present:
            present.append(eid)
    return Timepoint(id=f"tp_{index:03d}", index=index, timestamp=when, event=reply.event,
                     entities_present=present, causal_parent=parent.id, causal_link=reply.causal_link,
                     importance=IMPORTANCE[reply.importance])


def plan(template: Template, dialog: DialogConfig) -> list[PlannedCall]:
    """The calls a FORWARD run makes, for `timepoint estimate`: scene fills, then per timepoint
    an event (after the first), a dialog of the expected length and its extraction."""
    premise = len(template.premise) + 60 * len(template.entities)
    missing = [e for e in template.entities
               if not (e.description and e.personality_traits and e.initial_knowledge and e.goals)]
    scene = template.scene
    calls = [PlannedCall("scene", len(missing) + (not (scene.title and scene.location and scene.opening_event)),
                         premise + 200, EntityFill)]
    everyone = min(len(template.entities), dialog.max_participants)
    ids = [e.id for e in template.entities]
    roster = max(len(e.model_dump_json()) for e in template.entities) + 2000  # both layers and what they learn
    calls += [PlannedCall("steering", template.timepoints - 1, premise + 1600, next_event_schema(ids))]
    # The opening has everyone; later the model picks who is there (two at least): expect the midpoint.
    for participants, dialogs in ((everyone, 1), ((2 + everyone) / 2, template.timepoints - 1)):
        lo, hi = turn_bounds(round(participants), False, dialog)
        turns = (lo + hi) / 2
        history = 150 * min(turns, 8) / 2
        calls += [
            PlannedCall("steering", (turns + 1) * dialogs, 600 * participants + 900, steering_schema(ids)),
            PlannedCall("dialog", turns * dialogs, roster + 400 + history, TurnDraft),
            PlannedCall("judge", dialog.semantic_check * dialogs, 150 * turns + 300, SemanticCheck),
            PlannedCall("extraction", dialogs, 150 * turns + 400, outcome_schema(ids)),
            PlannedCall("summary", 2 * participants * dialogs, 150 * turns + 400, MemoryNote),  # memory, rumination
        ]
    return calls


def _participants(sim: Simulation, present: list[str]) -> list[str]:
    cap = sim.config.dialog.max_participants
    if len(present) <= cap:
        return present
    chosen = set(sim.rng.sample(present, cap))
    return [p for p in present if p in chosen]


async def run(sim: Simulation) -> None:
    dialog: Dialog | None = None
    parent: Timepoint | None = None
    for index in range(sim.template.timepoints):
        if parent is None:
            tp = Timepoint(id="tp_000", index=0, timestamp=sim.time_of(0), event=sim.opening_event,
                           entities_present=list(sim.entities), causal_link="opening of the scenario",
                           importance=0.5)
        else:
            tp = await _next_event(sim, index, parent, dialog)
        sim.add_timepoint(tp)
        log.info("%s %s: %s (%d present)", tp.id, tp.timestamp, tp.event[:100], len(tp.entities_present))
        sim.expose([ExposureEvent(entity_id=eid, event_type="experienced", information=f"Experienced: {tp.event}",
                                  source="experience", timestamp=tp.timestamp, confidence=1.0, timepoint_id=tp.id)
                    for eid in tp.entities_present])
        participants = _participants(sim, tp.entities_present)
        dialog = None
        if len(participants) >= 2:
            dialog = await run_dialog(sim, tp, participants)
            await after_dialog(sim, tp, dialog)
            sim.store.save_dialog(dialog)
            log.info("%s dialog: %d turns among %s", tp.id, len(dialog.turns), ", ".join(participants))
        sim.snapshot(tp)
        parent = tp
