"""DIRECTORIAL (M17): the story told to a five-act plan.

One call plans the acts, beats, character arcs and central conflict from the premise; another plans
the camera (whose eyes each act is seen through, how it is framed). Every scene then has a tension
target, interpolated across its act and scaled by `dramatic_tension`, and is written at a
temperature that rises with it; the tension the scene reaches is pulled 70/30 toward the target.
Drafts are ranked by arc completion, tension fit and point-of-view match.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, Field, create_model

from ..concurrency import gather_all
from ..config import DialogConfig, DirectorialMode
from ..dialog.prompts import spoken_time
from ..errors import SimulationError
from ..estimate import PlannedCall
from ..llm.schema_cache import cached_schema
from ..scenario import Template
from ..simulation import Simulation
from .common import Moment, at_least_two, dialog_plan, follow, keep, state_fields
from .judging import RATING, brief

log = logging.getLogger(__name__)

ACTS = ("setup", "rising", "climax", "falling", "resolution")
FALLBACK_ENDS = (0.2, 0.5, 0.7, 0.85, 1.0)
TENSION_RANGE = {"setup": (0.2, 0.4), "rising": (0.4, 0.7), "climax": (0.8, 1.0), "falling": (0.5, 0.3),
                 "resolution": (0.1, 0.2)}
ACT_IMPORTANCE = {"setup": 0.3, "rising": 0.5, "climax": 0.9, "falling": 0.4, "resolution": 0.3}
TENSION_WORDS = {"calm": 0.1, "uneasy": 0.3, "tense": 0.5, "gripping": 0.75, "unbearable": 0.95}
FRAMINGS = ("wide", "close", "overhead", "subjective", "ensemble")


@cached_schema
def plan_schema(entity_ids: list[str]) -> type[BaseModel]:
    arc = create_model(
        "CharacterArc",
        entity_id=(Literal[tuple(entity_ids)], ...),
        arc_type=(Literal["protagonist", "antagonist", "supporting", "catalyst"], ...),
        arc_description=(str, Field(max_length=200)),
        key_moments=(list[Annotated[str, Field(max_length=100)]], Field(max_length=3)),
    )
    ends = {f"{act}_ends_at_percent": (int, Field(description=f"Where the {act} act ends, 0-100"))
            for act in ACTS[:-1]}
    return create_model(
        "NarrativePlan",
        central_conflict=(str, Field(max_length=300)),
        **ends,
        beats=(list[Annotated[str, Field(max_length=120)]], Field(min_length=3, max_length=6)),
        character_arcs=(list[arc], Field(min_length=1, max_length=len(entity_ids))),
        thematic_elements=(list[Annotated[str, Field(max_length=60)]], Field(max_length=4)),
    )


@cached_schema
def camera_schema(entity_ids: list[str]) -> type[BaseModel]:
    shot = create_model(
        "ActCamera",
        pov_entity=(Literal[tuple(entity_ids)], Field(description="Whose eyes the act is seen through")),
        framing=(Literal[FRAMINGS], ...),
        rationale=(str, Field(max_length=160)),
    )
    return create_model("CameraPlan", **{act: (shot, ...) for act in ACTS},
                        storyline_threads=(list[Annotated[str, Field(max_length=100)]], Field(max_length=4)))


@cached_schema
def scene_schema(entity_ids: list[str]) -> type[BaseModel]:
    return create_model(
        "Scene",
        **state_fields(entity_ids, "What happens in this scene, concretely",
                       "Why this follows from the previous scene"),
        tension=(Literal[tuple(TENSION_WORDS)], Field(description="How tense the scene is")),
        dramatic_irony=(str, Field(max_length=200, description="What the audience knows that a character in the "
                                                                "scene does not; empty if nothing")),
        emotional_beat=(str, Field(max_length=100, description="The emotional turn of the scene; empty if none")),
    )


class DraftVerdict(BaseModel):
    arc: Literal[tuple(RATING)] = Field(description="How completely the characters' arcs are carried through")
    tension: Literal[tuple(RATING)] = Field(description="How well the tension builds, peaks and releases")


def act_bounds(plan) -> list[tuple[str, float, float]]:
    """(act, start, end) as shares of the story; the fallback split when the plan's are not increasing."""
    ends = [getattr(plan, f"{act}_ends_at_percent") / 100 for act in ACTS[:-1]] + [1.0]
    if not all(a < b for a, b in zip([0.0, *ends], ends)):
        ends = list(FALLBACK_ENDS)
    return [(act, start, end) for act, start, end in zip(ACTS, [0.0, *ends[:-1]], ends)]


def act_at(position: float, bounds: list[tuple[str, float, float]]) -> tuple[str, float]:
    """The act a position falls in, and how far through that act it is."""
    for act, start, end in bounds:
        if position <= end:
            return act, (position - start) / (end - start)
    return bounds[-1][0], 1.0


def tension_target(position: float, bounds: list[tuple[str, float, float]], dramatic_tension: float) -> float:
    act, through = act_at(position, bounds)
    lo, hi = TENSION_RANGE[act]
    return round((lo + (hi - lo) * through) * dramatic_tension, 4)


def resolution_for(importance: float) -> str:
    return "trained" if importance > 0.8 else "dialog" if importance > 0.5 else "scene" if importance > 0.2 \
        else "tensor_only"


@dataclass
class Draft:
    moments: list[Moment] = field(default_factory=list)
    score: float = 0.0
    parts: dict = field(default_factory=dict)


class Director:
    def __init__(self, sim: Simulation, mode: DirectorialMode):
        self.sim, self.mode = sim, mode
        self.steps = mode.steps or max(5, sim.template.timepoints)
        self.ids = list(sim.entities)

    async def plan(self):
        return await self.sim.gateway.structured("steering", [
            {"role": "system", "content": "You are a story director. Plan the premise as a five-act drama: setup, "
                                          "rising action, climax, falling action, resolution. Answer in JSON."},
            {"role": "user", "content": f"{brief(self.sim)}\n\nThe story is told in {self.steps} scenes."},
        ], plan_schema(self.ids), temperature=0.7)

    async def camera(self, plan):
        arcs = "\n".join(f"- {a.entity_id} ({a.arc_type}): {a.arc_description}" for a in plan.character_arcs)
        return await self.sim.gateway.structured("steering", [
            {"role": "system", "content": "You are a director of photography. For each act, choose whose eyes we "
                                          "see it through and how it is framed. Answer in JSON."},
            {"role": "user", "content": f"{brief(self.sim)}\n\nCentral conflict: {plan.central_conflict}\n"
                                        f"Character arcs:\n{arcs}"},
        ], camera_schema(self.ids), temperature=0.5)

    async def draft(self, plan, camera, bounds, number: int) -> Draft:
        draft, previous = Draft(), self.sim.opening_event or "The story has not begun."
        for step in range(self.steps):
            position = step / (self.steps - 1)
            act, _ = act_at(position, bounds)
            target = tension_target(position, bounds, self.mode.dramatic_tension)
            shot = getattr(camera, act)
            scene = await self.sim.attempt(f"scene (draft {number}, {step})", self.sim.gateway.structured("steering", [
                {"role": "system", "content": f"You write one scene of a five-act drama (draft {number + 1}). Keep "
                                              "to the premise and the cast. Answer in JSON."},
                {"role": "user", "content": f"{brief(self.sim)}\n\nCentral conflict: {plan.central_conflict}\n"
                                            f"Beats: {'; '.join(plan.beats)}\nScene {step + 1} of {self.steps}, "
                                            f"{act} act, at {spoken_time(self.sim.time_of(step))}. Tension "
                                            f"target {target:.2f} of 1. Seen through {shot.pov_entity}'s eyes, "
                                            f"{shot.framing} framing.\nPrevious scene: {previous}\nWrite this scene."},
            ], scene_schema(self.ids), temperature=round(0.7 + 0.2 * target, 3), frequency_penalty=0.3))
            if scene is None:
                break  # the draft ends at the last scene it has
            tension = round(0.7 * target + 0.3 * TENSION_WORDS[scene.tension], 4)
            importance = ACT_IMPORTANCE[act]
            if tension > 0.8:
                importance = max(importance, 0.7)
            if scene.emotional_beat.strip():
                importance += 0.15
            present = at_least_two(scene.entities_involved, self.ids)
            draft.moments.append(Moment(self.sim.time_of(step), scene.description, present, scene.causal_link,
                                        min(1.0, importance), {
                "act": act, "tension_target": target, "tension": tension, "pov": shot.pov_entity,
                "framing": shot.framing, "pov_present": shot.pov_entity in present,
                "dramatic_irony": scene.dramatic_irony, "emotional_beat": scene.emotional_beat,
                "key_events": scene.key_events, "resolution": resolution_for(importance)}))
            previous = scene.description
        if draft.moments:
            await self._validate(draft)
        return draft

    async def _validate(self, draft: Draft) -> None:
        """0.4 arc completion + 0.3 tension fit + 0.3 point-of-view match, blended 0.6/0.4 with a judge
        past 0.3; the rank is 0.4 of that plus 0.3 arc and 0.3 tension fit."""
        meta = [m.metadata for m in draft.moments]
        arc = len({m["act"] for m in meta}) / len(ACTS)
        fit = max(0.0, 1 - 2 * statistics.fmean(abs(m["tension"] - m["tension_target"]) for m in meta))
        pov = statistics.fmean(m["pov_present"] for m in meta)
        coherence = 0.4 * arc + 0.3 * fit + 0.3 * pov
        parts = {"arc_completion": round(arc, 4), "tension_fit": round(fit, 4), "pov_match": round(pov, 4)}
        if coherence > 0.3:
            story = "\n".join(f"- {m.metadata['act']} (tension {m.metadata['tension']:.2f}): {m.description}"
                              for m in draft.moments)
            verdict = await self.sim.attempt("draft judgement", self.sim.gateway.structured("judge", [
                {"role": "system", "content": "You judge a five-act drama: are the arcs carried through, and does "
                                              "the tension build, peak and release? Answer in JSON."},
                {"role": "user", "content": f"{brief(self.sim)}\n\nThe scenes:\n{story}"},
            ], DraftVerdict, temperature=0.3))
            if verdict is not None:
                parts["judge"] = (RATING[verdict.arc] + RATING[verdict.tension]) / 2
                coherence = 0.6 * coherence + 0.4 * parts["judge"]
        parts["coherence"] = round(coherence, 4)
        draft.parts, draft.score = parts, round(0.4 * coherence + 0.3 * arc + 0.3 * fit, 4)


async def run(sim: Simulation) -> None:
    mode: DirectorialMode = sim.mode_config
    sim.fire("M17", "directorial", None)
    director = Director(sim, mode)
    plan = await director.plan()
    camera = await director.camera(plan)
    bounds = act_bounds(plan)
    drafts = await gather_all(*(director.draft(plan, camera, bounds, n) for n in range(mode.path_count)))
    drafts = sorted((d for d in drafts if d.moments), key=lambda d: -d.score)
    if not drafts:
        raise SimulationError("DIRECTORIAL: no draft got a first scene written (see the gaps table); rerun the same "
                              "command to resume, finished calls come from the cache")
    for rank, draft in enumerate(drafts):
        timeline = "main" if rank == 0 else f"draft_{rank}"
        pov = [m.metadata["pov"] for m in draft.moments]
        sim.store.save_timeline(timeline, mode="directorial", rank=rank, coherence=draft.parts["coherence"],
                                metadata={
            "score": draft.score, "parts": draft.parts,
            "acts": [{"act": a, "start": round(s, 4), "end": round(e, 4)} for a, s, e in bounds],
            "tension_curve": [{"target": m.metadata["tension_target"], "actual": m.metadata["tension"]}
                              for m in draft.moments],
            "pov_distribution": {e: pov.count(e) for e in dict.fromkeys(pov)},
            "plan": plan.model_dump(), "camera": camera.model_dump()})
        if rank:
            keep(sim, draft.moments, timeline, prefix=f"d{rank}_")
    await follow(sim, drafts[0].moments)


def plan(template: Template, mode: DirectorialMode, dialog: DialogConfig) -> list[PlannedCall]:
    """The plan and the camera, a scene per step and a judge per draft, then a dialog per scene."""
    steps = mode.steps or max(5, template.timepoints)
    ids = [e.id for e in template.entities]
    prompt = len(template.premise) + 200 * len(template.entities) + 1000
    return [PlannedCall("steering", 1, prompt, plan_schema(ids)),
            PlannedCall("steering", 1, prompt + 800, camera_schema(ids)),
            PlannedCall("steering", mode.path_count * steps, prompt + 900, scene_schema(ids)),
            PlannedCall("judge", mode.path_count, prompt + 450 * steps, DraftVerdict),
            *dialog_plan(template, dialog, opening=0, later=steps)]
