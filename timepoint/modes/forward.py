"""FORWARD: time runs on from the opening event; each timepoint's event follows from the last dialog."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, create_model

from ..config import DialogConfig, ForwardMode
from ..dialog.prompts import spoken_time, transcript
from ..estimate import PlannedCall
from ..llm.schema_cache import cached_schema
from ..scenario import Template
from ..simulation import Simulation
from ..world import Dialog, Timepoint
from .common import at_least_two, dialog_plan, live_through

# Ratings are words, not floats: a grammar can enforce an enum but not a numeric range.
IMPORTANCE = {"minor": 0.25, "notable": 0.5, "major": 0.75, "pivotal": 1.0}


@cached_schema
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
    present = at_least_two(reply.entities_present, parent.entities_present)
    return Timepoint(id=f"tp_{index:03d}", index=index, timestamp=when, event=reply.event,
                     entities_present=present, causal_parent=parent.id, causal_link=reply.causal_link,
                     importance=IMPORTANCE[reply.importance])


def plan(template: Template, mode: ForwardMode, dialog: DialogConfig) -> list[PlannedCall]:
    """The calls a FORWARD run makes, for `timepoint estimate`: an event per timepoint after the
    first, and a dialog at each."""
    premise = len(template.premise) + 60 * len(template.entities)
    ids = [e.id for e in template.entities]
    return [
        PlannedCall("steering", template.timepoints - 1, premise + 1600, next_event_schema(ids)),
        *dialog_plan(template, dialog, opening=1, later=template.timepoints - 1),
    ]


async def run(sim: Simulation) -> None:
    sim.fire("M17", "forward", None)
    sim.store.save_timeline("main", mode="forward", rank=0)
    dialog: Dialog | None = None
    parent: Timepoint | None = None
    for index in range(sim.template.timepoints):
        if parent is None:
            tp = Timepoint(id="tp_000", index=0, timestamp=sim.time_of(0), event=sim.opening_event,
                           entities_present=list(sim.entities), causal_link="opening of the scenario",
                           importance=0.5)
        else:
            tp = await sim.attempt(f"next event ({index})", _next_event(sim, index, parent, dialog))
            if tp is None:
                break  # the timeline ends at the last timepoint it has
        dialog = await live_through(sim, tp)
        parent = tp
