"""Scene set-up: the cast and the opening from the template; the model fills only what it leaves out."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, Field

from .concurrency import gather_all
from .dialog.prompts import spoken_time
from .errors import SimulationError
from .estimate import PlannedCall
from .mechanisms import population
from .scenario import BIG_FIVE, RosterEntity, Template
from .simulation import Simulation
from .world import (
    RELATIONSHIP_TRUST,
    Entity,
    ExposureEvent,
    PhysicalState,
    Relationship,
    baseline_tensor,
    cognitive_from_tensor,
    tensor_with_cognitive,
)


class SceneFill(BaseModel):
    title: str = Field(max_length=80, description="A short title for the scene")
    location: str = Field(max_length=120, description="Where the scene takes place")
    opening_event: str = Field(max_length=400, description="What happens as the scene opens, in one or two sentences")


class EntityFill(BaseModel):
    description: str = Field(max_length=240, description="Who this person is, in one sentence")
    personality_traits: list[Annotated[str, Field(max_length=24)]] = Field(min_length=3, max_length=6)
    initial_knowledge: list[Annotated[str, Field(max_length=160)]] = Field(
        min_length=3, max_length=5, description="Facts this person knows")
    goals: list[Annotated[str, Field(max_length=120)]] = Field(min_length=1, max_length=2)


def _brief(sim: Simulation) -> str:
    t = sim.template
    cast = "; ".join(f"{e.display_name} ({e.title or e.type})" for e in t.entities)
    return f"Scenario: {t.title}\nPremise: {t.premise}\nStart: {spoken_time(t.time.start)}\nCast: {cast}"


async def _fill_scene(sim: Simulation) -> None:
    scene = sim.template.scene
    if scene.title and scene.location and scene.opening_event:
        return
    fill = await sim.attempt("scene fill", sim.gateway.structured("scene", [
        {"role": "system", "content": "You set the scene for a social simulation. Answer in JSON."},
        {"role": "user", "content": f"{_brief(sim)}\n\nGive the scene a title, a location and an opening event."},
    ], SceneFill, temperature=0.3))
    if fill is None:  # the template's own words stand in
        sim.title = scene.title or sim.template.title
        sim.location = scene.location or ""
        sim.opening_event = scene.opening_event or sim.template.premise
        return
    sim.title = scene.title or fill.title
    sim.location = scene.location or fill.location
    sim.opening_event = scene.opening_event or fill.opening_event


def _complete(roster: RosterEntity) -> bool:
    return bool(roster.description and roster.personality_traits and roster.initial_knowledge and roster.goals)


async def _fill_entity(sim: Simulation, roster: RosterEntity) -> RosterEntity:
    """What the template leaves out of a character, written by the model."""
    if _complete(roster):
        return roster
    fill = await sim.gateway.structured("scene", [
        {"role": "system", "content": "You write character sheets for a social simulation. Answer in JSON."},
        {"role": "user", "content": f"{_brief(sim)}\n\nWrite the character sheet of {roster.display_name}"
                                    f"{', ' + roster.title if roster.title else ''}."},
    ], EntityFill, temperature=0.3)
    return roster.model_copy(update={
        "description": roster.description or fill.description,
        "personality_traits": roster.personality_traits or [t.lower() for t in fill.personality_traits],
        "initial_knowledge": roster.initial_knowledge or fill.initial_knowledge,
        "goals": roster.goals or fill.goals,
    })


async def _fill_cast(sim: Simulation) -> list[RosterEntity]:
    """Every character, filled where the template leaves gaps. A character whose fill failed joins as
    the template declares it (a gap); if every fill failed, the model cannot cast this scene and the
    run stops (the spine)."""
    roster = sim.template.entities
    fills = await gather_all(*(sim.attempt(f"character sheet ({r.id})", _fill_entity(sim, r)) for r in roster))
    if any(not _complete(r) for r in roster) and all(f is None for f, r in zip(fills, roster) if not _complete(r)):
        raise SimulationError("scene set-up: no character sheet could be written (the scene calls failed; see the "
                              "gaps table and calls.jsonl); rerun the same command to resume, finished calls come "
                              "from the cache")
    return [f or r for r, f in zip(roster, fills)]


def _entity(roster: RosterEntity) -> Entity:
    """Initial state from personality: anxious people start aroused, outgoing ones social."""
    human = roster.type == "human"
    body = roster.body
    physical = PhysicalState(age=roster.age or (35.0 if human else 100.0),
                             fever=(body.fever if body and body.fever else 36.5 if human else 0.0),
                             mobility=1.0 if roster.type in ("human", "animal") else 0.0,
                             pain=body.pain if body else 0.0,
                             health=body.health if body else 1.0, stamina=body.stamina if body else 1.0)
    tensor = baseline_tensor(roster.type, physical, roster.personality_traits)
    b = [roster.temperament.get(dim, value) for dim, value in zip(BIG_FIVE, tensor.behavior)] + tensor.behavior[5:]
    context = tensor.context.copy()
    context[2] = round(0.2 + 0.3 * b[4], 4)          # arousal from neuroticism
    context[5] = round(1.0 - 0.5 * b[6], 4)          # patience falls with decision speed
    context[6] = b[5]                                 # risk tolerance
    context[7] = round(0.3 + 0.6 * b[2], 4)          # social engagement from extraversion
    tensor = tensor.model_copy(update={"context": context, "behavior": b})
    cognitive = cognitive_from_tensor(tensor)
    if roster.start:
        cognitive = cognitive.model_copy(update=roster.start.model_dump(exclude_none=True))
        tensor = tensor_with_cognitive(tensor, cognitive, 0)
    return Entity(
        id=roster.id, name=roster.display_name, type=roster.type, role=roster.role, title=roster.title or "",
        description=roster.description or "", traits=roster.personality_traits, goals=roster.goals,
        voice_guide=roster.voice_guide.model_dump() if roster.voice_guide else {},
        speech_examples=roster.speech_examples, adprs=roster.adprs, tensor=tensor,
        cognitive=cognitive, physical=physical,
    )


def plan(template: Template, enabled: list[str]) -> list[PlannedCall]:
    """Scene set-up's calls, in every mode: fills for what the template leaves out, and M6's reading
    of each character."""
    premise = len(template.premise) + 60 * len(template.entities)
    missing = [e for e in template.entities if not _complete(e)]
    scene = template.scene
    return [PlannedCall("scene", len(missing) + (not (scene.title and scene.location and scene.opening_event)),
                        premise + 200, EntityFill),
            PlannedCall("scene", len(template.entities) * ("M6" in enabled), premise + 600, population.Reading)]


def join(sim: Simulation, roster: RosterEntity, declared: dict, known_since: datetime, timepoint_id: str) -> Entity:
    """Bring an entity into the world: its state, a relationship with everyone already there
    (declared, else neutral), and its initial knowledge as M3 `initial` exposures."""
    entity = sim.entities[roster.id] = _entity(roster)
    for other in sim.entities:
        if other != roster.id:
            a, b = sorted((roster.id, other))
            rel = declared.get((a, b))
            kind = rel.type if rel else "neutral"
            trust = rel.trust if rel and rel.trust is not None else RELATIONSHIP_TRUST[kind]
            sim.relationships[(a, b)] = Relationship(a=a, b=b, type=kind, trust=trust)
    sim.expose([ExposureEvent(entity_id=roster.id, event_type="initial", information=item,
                              source="scene_initialization", timestamp=known_since, confidence=1.0,
                              timepoint_id=timepoint_id) for item in roster.initial_knowledge])
    sim.store.save_entities([entity])
    sim.store.save_relationships(list(sim.relationships.values()))
    return entity


async def set_up_scene(sim: Simulation) -> None:
    """Entities, relationships and initial knowledge (M3 `initial` events, a day before the start)."""
    roster, _ = await gather_all(_fill_cast(sim), _fill_scene(sim))
    declared = {tuple(sorted((r.a, r.b))): r for r in sim.template.relationships}
    before = sim.time_of(0) - timedelta(days=1)
    for r in roster:
        join(sim, r, declared, before, "pre_tp_000")
    if "M6" in sim.enabled:
        await population.populate(sim)
    sim.store.update_run(title=sim.title, location=sim.location)
