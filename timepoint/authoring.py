"""`timepoint new "premise"`: the model writes a template from a sentence.

The model fills an authoring schema (names, not ids; a cast of exactly the size asked for), the
draft is turned into a template and validated against the real schema; if it does not validate,
the error goes back to the model for one repair round. The result is saved as YAML.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from .errors import UserError, describe
from .numeric import clamp
from .scenario import ModeName, Template, TimeUnit

Short = Annotated[str, Field(max_length=160)]


class DraftEntity(BaseModel):
    name: str = Field(max_length=60)
    title: str = Field(max_length=80, description="Job or position in the scene")
    description: str = Field(max_length=300)
    age: int
    personality_traits: list[Annotated[str, Field(max_length=30)]] = Field(min_length=3, max_length=6)
    initial_knowledge: list[Short] = Field(min_length=2, max_length=4, description="Facts only this person knows")
    goals: list[Short] = Field(min_length=1, max_length=2)
    sentence_length: str = Field(max_length=80, description="How long their sentences run")
    verbal_tics: list[Annotated[str, Field(max_length=80)]] = Field(max_length=3)
    disagreement_style: str = Field(max_length=160)
    speech_examples: list[Short] = Field(min_length=3, max_length=3)


class SceneDraft(BaseModel):
    title: str = Field(max_length=80)
    premise: str = Field(max_length=900, description="8-12 sentences: who, where, stakes, numbers, and what each "
                                                      "person knows that the others do not")
    location: str = Field(max_length=160)
    opening_event: str = Field(max_length=400)
    year: int = Field(description="The year it begins")
    month: Literal[tuple(range(1, 13))]
    day: Literal[tuple(range(1, 29))]
    hour: Literal[tuple(range(24))]
    resolution: TimeUnit = Field(description="The unit of time between timepoints")
    step: int = Field(description="How many units between timepoints")


def slug(text: str, limit: int = 40) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    name = "_".join(words)[:limit].strip("_") or "scenario"
    return name if name[0].isalpha() else f"s_{name}"


def to_template(draft: SceneDraft, cast: list[DraftEntity], mode: ModeName, timepoints: int,
                world_id: str) -> dict:
    """The draft in the template's own shape: ids from names, unique."""
    ids: list[str] = []
    for e in cast:
        base = slug(e.name, 30)
        ids.append(base if base not in ids else f"{base}_{len(ids)}")
    return {
        "world_id": world_id, "title": draft.title, "premise": draft.premise, "mode": mode,
        "time": {"start": datetime(clamp(draft.year, 1, 9999), draft.month, draft.day, draft.hour),
                 "resolution": draft.resolution, "step": max(1, draft.step)},
        "timepoints": timepoints,
        "scene": {"title": draft.title, "location": draft.location, "opening_event": draft.opening_event},
        "entities": [{
            "id": eid, "name": e.name, "title": e.title, "description": e.description, "age": max(0, e.age),
            "personality_traits": e.personality_traits, "initial_knowledge": e.initial_knowledge,
            "goals": e.goals, "speech_examples": e.speech_examples,
            "voice_guide": {"sentence_length": e.sentence_length, "verbal_tics": e.verbal_tics,
                            "disagreement_style": e.disagreement_style},
        } for eid, e in zip(ids, cast)],
    }


SYSTEM = ("You write scenario templates for a social simulation that makes training data: a concrete premise "
          "with names, numbers and dates, and a cast whose members know different things and sound different. "
          "Answer in JSON.")


async def _draft(gateway, premise: str, entities: int, timepoints: int, feedback: str) -> tuple[SceneDraft, list]:
    """The scene first, then each member of the cast in turn, knowing who is already in it — small
    answers that even a small model's grammar can hold, and a cast that does not repeat itself."""
    ask = f"Scenario: {premise}\nCast: {entities} people. The story has {timepoints} moments.{feedback}"
    scene = await gateway.structured("scene", [{"role": "system", "content": SYSTEM},
                                               {"role": "user", "content": ask}], SceneDraft, temperature=0.7)
    cast: list[DraftEntity] = []
    for k in range(entities):
        so_far = "; ".join(f"{e.name} ({e.title})" for e in cast) or "nobody yet"
        cast.append(await gateway.structured("scene", [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"{scene.title}. {scene.premise}\nWrite person {k + 1} of {entities}: a "
                                        f"different name, role and voice from those already cast ({so_far}), "
                                        f"with facts only they know.{feedback}"}], DraftEntity, temperature=0.7))
    return scene, cast


async def write_template(gateway, premise: str, entities: int, timepoints: int,
                         mode: Literal["forward"] = "forward") -> dict:
    """A validated template (as a dict) for `premise`, after at most one repair round."""
    feedback = ""
    for attempt in range(2):
        scene, cast = await _draft(gateway, premise, entities, timepoints, feedback)
        raw = to_template(scene, cast, mode, timepoints, slug(premise))
        try:
            Template.model_validate(raw)
            return raw
        except ValidationError as exc:
            problem = describe(exc, "field")
            if attempt:
                raise UserError(f"new: the model's template did not validate after a repair round: {problem}")
            feedback = f"\nA first draft did not validate ({problem}); avoid that."
    raise AssertionError("unreachable")


def save(template: dict, directory: Path, name: str | None) -> Path:
    """Write the template as YAML; refuses to overwrite an existing one."""
    path = directory / f"{name or template['world_id']}.yaml"
    if path.exists():
        raise UserError(f"new: {path} exists; choose another --name")
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(template, sort_keys=False, allow_unicode=True, width=100))
    return path
