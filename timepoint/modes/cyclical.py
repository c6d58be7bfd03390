"""CYCLICAL (M17): recurrence, escalation and prophecy.

One call reads the premise for its cycle semantics (what kind of cycle, how it varies, what recurs,
how the future is glimpsed). The first cycle is the archetype; every later cycle k replays it
position by position with escalation k/(loops − 1), and opens with a prophecy aimed at a cycle to
come. When that cycle has run, a judge checks whether the prophecy came true. Coherence weighs
whether cycles completed, whether the recurring elements recur, and how many prophecies came true.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, Field, create_model

from ..concurrency import gather_all
from ..config import CyclicalMode, DialogConfig
from ..dialog.prompts import spoken_time
from ..estimate import PlannedCall
from ..llm.schema_cache import cached_schema
from ..scenario import Template
from ..simulation import Simulation
from ..world import ExposureEvent, jaccard
from .common import Moment, at_least_two, dialog_plan, keep, linked, live_through, state_fields
from .judging import RATING, brief

log = logging.getLogger(__name__)

CONFIDENCE = {"low": 0.25, "medium": 0.5, "high": 0.75, "certain": 0.95}


class CycleSemantics(BaseModel):
    cycle_type: Literal["repeating", "spiral", "causal_loop", "oscillating", "composite"]
    variation_mode: Literal["mutation", "amplification", "retroactive", "inversion", "mixed"]
    escalation_rule: str = Field(max_length=200, description="How each cycle raises the stakes over the last")
    prophecy_mechanism: Literal["deja_vu", "oracle", "pattern_recognition", "fate", "none"]
    loop_structure: str = Field(max_length=200, description="What one cycle is, from start to end")
    recurring_elements: list[Annotated[str, Field(max_length=60)]] = Field(min_length=3, max_length=5)
    variation_seeds: list[Annotated[str, Field(max_length=100)]] = Field(max_length=3)


class FulfilmentCheck(BaseModel):
    evidence: str = Field(max_length=240, description="What in the cycle bears on the prophecy")
    fulfilled: bool
    confidence: Literal[tuple(CONFIDENCE)]


class LoopClosure(BaseModel):
    closes: bool = Field(description="Does the last state lead back into the first?")
    gap: str = Field(max_length=200, description="What is missing for the loop to close")


class CycleJudgement(BaseModel):
    recurrence: Literal[tuple(RATING)] = Field(description="How convincingly the cycle recurs and escalates")


@cached_schema
def state_schema(entity_ids: list[str], elements: list[str]) -> type[BaseModel]:
    return create_model(
        "CycleState",
        **state_fields(entity_ids, "The situation now, concretely: names, numbers",
                       "Why this follows from the previous state"),
        recurring=(list[Literal[tuple(elements)]], Field(max_length=len(elements), json_schema_extra={
            "uniqueItems": True}, description="Which recurring elements appear in this state")),
    )


@cached_schema
def prophecy_schema(targets: list[int]) -> type[BaseModel]:
    return create_model(
        "Prophecy",
        prophecy_text=(str, Field(max_length=240)),
        prophecy_type=(Literal["warning", "promise", "riddle", "vision"], ...),
        target_cycle=(Literal[tuple(targets)], Field(description="The cycle in which it should come true")),
        fulfillment_condition=(str, Field(max_length=200, description="What would count as it coming true")),
    )


@dataclass
class Prophecy:
    made_in: int
    at_index: int
    text: str
    kind: str
    target: int
    condition: str
    fulfilled: bool | None = None
    confidence: float | None = None
    evidence: str = ""


@dataclass
class Path:
    moments: list[Moment] = field(default_factory=list)
    recurring: list[set[str]] = field(default_factory=list)    # per timepoint
    prophecies: list[Prophecy] = field(default_factory=list)
    coherence: float = 0.0
    parts: dict = field(default_factory=dict)


def shape(template: Template, mode: CyclicalMode) -> tuple[int, int]:
    """(cycle length, loops): the mode's values, else the template's cycle, else 4 and timepoints // 4."""
    length = mode.cycle_length or (template.cycle.length if template.cycle else 4)
    return length, mode.loops or max(2, template.timepoints // length)


def words(text: str) -> set[str]:
    return {w.strip(".,;:!?'\"()").lower() for w in text.split() if len(w) > 3}


class Cycler:
    def __init__(self, sim: Simulation, mode: CyclicalMode):
        self.sim, self.mode = sim, mode
        self.length, self.loops = shape(sim.template, mode)
        cycle = sim.template.cycle
        self.phases = cycle.phases if cycle and len(cycle.phases) == self.length else \
            [f"phase {p + 1} of {self.length}" for p in range(self.length)]
        self.ids = list(sim.entities)

    async def semantics(self) -> CycleSemantics:
        return await self.sim.gateway.structured("steering", [
            {"role": "system", "content": "You design the cycle structure of a cyclical story: what recurs, how it "
                                          "varies, how it escalates, how the future is glimpsed. Answer in JSON."},
            {"role": "user", "content": f"{brief(self.sim)}\n\nOne cycle has {self.length} phases: "
                                        f"{', '.join(self.phases)}. The story runs {self.loops} cycles."},
        ], CycleSemantics, temperature=0.5)

    async def history(self, sem: CycleSemantics, draft: int) -> Path:
        path = Path()
        elements = sem.recurring_elements
        origin = Moment(self.sim.time_of(0), self.sim.opening_event or self.sim.template.premise, self.ids,
                        "opening of the scenario", 0.5)
        self._add(path, origin, {e for e in elements if words(e) & words(origin.description)}, 0, 0, None)
        for index in range(1, self.loops * self.length):
            k, p = divmod(index, self.length)
            if p == 0 and sem.prophecy_mechanism != "none":
                prophecy = await self.sim.attempt(f"prophecy (draft {draft}, cycle {k})",
                                                  self._prophesy(sem, path, k, index))
                if prophecy:
                    path.prophecies.append(prophecy)
            if not await self.sim.attempt(f"cycle state (draft {draft}, {index})",
                                          self._next_state(sem, path, index, draft)):
                break  # the draft ends at the last state it has
            if p == self.length - 1:
                await self._check_prophecies(path, k)
        if sem.cycle_type == "causal_loop":
            await self.sim.attempt(f"loop closure (draft {draft})", self._close_loop(sem, path, draft))
        await self._judge(sem, path)
        return path

    def _add(self, path: Path, m: Moment, recurring: set[str], k: int, p: int, archetype: Moment | None) -> None:
        escalation = round(k / (self.loops - 1), 4)
        boundary = p == 0
        m.metadata.update(cycle=k, position=p, phase=self.phases[p], escalation=escalation, boundary=boundary,
                          recurring=sorted(recurring),
                          variation=round(1 - jaccard(words(m.description), words(archetype.description)), 4)
                          if archetype else 0.0,
                          resolution=("trained" if self.mode.prophecy_accuracy > 0.3 else "dialog") if boundary
                          else "scene")
        path.moments.append(m)
        path.recurring.append(recurring)

    async def _next_state(self, sem: CycleSemantics, path: Path, index: int, draft: int) -> Moment:
        k, p = divmod(index, self.length)
        previous = path.moments[-1]
        archetype = path.moments[p] if k else None
        escalation = k / (self.loops - 1)
        pending = [pr for pr in path.prophecies if pr.target >= k]
        task = (f"Cycle {k + 1} of {self.loops}, {self.phases[p]}, at {spoken_time(self.sim.time_of(index))}. "
                f"Cycle: {sem.cycle_type}; {sem.loop_structure}\n"
                f"Recurring elements: {', '.join(sem.recurring_elements)}\nPrevious state: {previous.description}\n")
        if archetype:
            task += (f"In the first cycle, this phase was: {archetype.description}\nReplay it with variation "
                     f"({sem.variation_mode}; ideas: {'; '.join(sem.variation_seeds) or 'your own'}) and "
                     f"escalation {escalation:.2f} of the maximum: {sem.escalation_rule}\n")
        if pending:
            task += "Prophecies in the air:\n" + "\n".join(f"- {pr.text}" for pr in pending) + "\n"
        reply = await self.sim.gateway.structured("steering", [
            {"role": "system", "content": f"You write one state of a cyclical story (draft {draft + 1}). Keep to the "
                                          "premise and the cast. Answer in JSON."},
            {"role": "user", "content": f"{brief(self.sim)}\n\n{task}What is the situation now?"},
        ], state_schema(self.ids, sem.recurring_elements), temperature=0.7, frequency_penalty=0.3)
        m = Moment(self.sim.time_of(index), reply.description, at_least_two(reply.entities_involved, self.ids),
                   reply.causal_link, 0.5 + 0.4 * escalation, {"key_events": reply.key_events})
        self._add(path, m, set(reply.recurring), k, p, archetype)
        return m

    async def _prophesy(self, sem: CycleSemantics, path: Path, k: int, index: int) -> Prophecy:
        story = "\n".join(f"- {m.metadata['phase']}, cycle {m.metadata['cycle'] + 1}: {m.description}"
                          for m in path.moments[-self.length:])
        reply = await self.sim.gateway.structured("steering", [
            {"role": "system", "content": f"You voice a prophecy in a cyclical story, by {sem.prophecy_mechanism}. "
                                          "It must be specific enough to be checked later. Answer in JSON."},
            {"role": "user", "content": f"{brief(self.sim)}\n\nThe cycle that just ended:\n{story}\n\nCycle {k + 1} "
                                        f"of {self.loops} begins. Recurring: {', '.join(sem.recurring_elements)}. "
                                        "What is foretold, and for which cycle (numbered from 0)?"},
        ], prophecy_schema(list(range(k, self.loops))), temperature=0.7)
        return Prophecy(made_in=k, at_index=index, text=reply.prophecy_text, kind=reply.prophecy_type,
                        target=reply.target_cycle, condition=reply.fulfillment_condition)

    async def _check_prophecies(self, path: Path, k: int) -> None:
        due = [pr for pr in path.prophecies if pr.target == k]
        cycle = "\n".join(f"- {m.description}" for m in path.moments[-self.length:])
        checks = await gather_all(*(self.sim.attempt(f"prophecy check (cycle {k})", self.sim.gateway.structured(
            "judge", [
                {"role": "system", "content": "You judge whether a prophecy came true, strictly, from what "
                                              "happened. Answer in JSON."},
                {"role": "user", "content": f"{brief(self.sim)}\n\nProphecy: {pr.text}\nIt comes true if: "
                                            f"{pr.condition}\n\nWhat happened in the cycle:\n{cycle}"},
            ], FulfilmentCheck, temperature=0.2)) for pr in due))
        for pr, check in zip(due, checks):
            if check is None:
                continue  # unchecked: it counts neither way
            pr.confidence = CONFIDENCE[check.confidence]
            pr.fulfilled = check.fulfilled and pr.confidence >= self.mode.prophecy_accuracy
            pr.evidence = check.evidence

    async def _close_loop(self, sem: CycleSemantics, path: Path, draft: int) -> None:
        """A causal loop must end where it began: check, and rewrite the last state if it does not."""
        first, last = path.moments[0], path.moments[-1]
        closure = await self.sim.gateway.structured("judge", [
            {"role": "system", "content": "You check whether a causal loop closes. Answer in JSON."},
            {"role": "user", "content": f"{brief(self.sim)}\n\nFirst state: {first.description}\n"
                                        f"Last state: {last.description}"},
        ], LoopClosure, temperature=0.2)
        last.metadata["loop_closed"] = closure.closes
        if not closure.closes:
            path.moments.pop()
            path.recurring.pop()
            sem_closing = sem.model_copy(update={"loop_structure": f"{sem.loop_structure} The last state must lead "
                                                                   f"straight back into the first: {closure.gap}"})
            await self._next_state(sem_closing, path, len(path.moments), draft)
            path.moments[-1].metadata["loop_closed"] = "rewritten"

    async def _judge(self, sem: CycleSemantics, path: Path) -> None:
        """0.3 cycles completed + 0.4 recurrence between consecutive cycles + 0.3 prophecies fulfilled
        (weights renormalised when nothing was foretold); blended 0.6/0.4 with a judge past 0.2."""
        cycles = [path.recurring[c * self.length:(c + 1) * self.length] for c in range(self.loops)]
        complete = sum(len(c) == self.length for c in cycles) / self.loops
        per_cycle = [set().union(*c) for c in cycles if c]
        recurrence = statistics.fmean(jaccard(a, b) for a, b in zip(per_cycle, per_cycle[1:])) \
            if len(per_cycle) > 1 else 0.0
        checked = [pr for pr in path.prophecies if pr.fulfilled is not None]
        parts = {"cycle_completion": round(complete, 4), "recurrence": round(recurrence, 4)}
        if checked:
            parts["prophecy_fulfilment"] = round(sum(pr.fulfilled for pr in checked) / len(checked), 4)
            score = 0.3 * complete + 0.4 * recurrence + 0.3 * parts["prophecy_fulfilment"]
        else:
            score = (0.3 * complete + 0.4 * recurrence) / 0.7
        if score > 0.2:
            story = "\n".join(f"- cycle {m.metadata['cycle'] + 1}, {m.metadata['phase']}: {m.description}"
                              for m in path.moments)
            verdict = await self.sim.attempt("cycle judgement", self.sim.gateway.structured("judge", [
                {"role": "system", "content": "You judge a cyclical story: does it recur recognisably and escalate "
                                              f"({sem.escalation_rule})? Answer in JSON."},
                {"role": "user", "content": f"{brief(self.sim)}\n\nThe story:\n{story}"},
            ], CycleJudgement, temperature=0.3))
            if verdict is not None:
                parts["judge"] = RATING[verdict.recurrence]
                score = 0.6 * score + 0.4 * parts["judge"]
        path.coherence, path.parts = round(score, 4), parts


def _record(pr: Prophecy) -> dict:
    return {"made_in_cycle": pr.made_in, "timepoint_index": pr.at_index, "text": pr.text, "type": pr.kind,
            "target_cycle": pr.target, "condition": pr.condition, "fulfilled": pr.fulfilled,
            "confidence": pr.confidence, "evidence": pr.evidence}


async def run(sim: Simulation) -> None:
    mode: CyclicalMode = sim.mode_config
    sim.fire("M17", "cyclical", None)
    cycler = Cycler(sim, mode)
    sem = await cycler.semantics()
    paths = sorted(await gather_all(*(cycler.history(sem, d) for d in range(mode.path_count))),
                   key=lambda p: -p.coherence)
    for rank, path in enumerate(paths):
        timeline = "main" if rank == 0 else f"cycle_draft_{rank}"
        sim.store.save_timeline(timeline, mode="cyclical", rank=rank, coherence=path.coherence, metadata={
            "semantics": sem.model_dump(), "cycle_length": cycler.length, "loops": cycler.loops,
            "coherence_parts": path.parts, "prophecies": [_record(pr) for pr in path.prophecies]})
        if rank:
            keep(sim, path.moments, timeline, prefix=f"c{rank}_")
    best = paths[0]
    spoken = {pr.at_index: pr for pr in best.prophecies}
    for tp in linked(best.moments, "main"):
        with sim.store.step():  # the prophecy is written with the timepoint it is spoken at
            if tp.index in spoken:
                pr = spoken[tp.index]
                tp.metadata["prophecy"] = _record(pr)
                sim.expose([ExposureEvent(entity_id=eid, event_type="expectation", information=f"Foretold ({pr.kind}): "
                                          f"{pr.text}", source=f"prophecy:{sem.prophecy_mechanism}",
                                          timestamp=tp.timestamp, confidence=0.5, timepoint_id=tp.id)
                            for eid in tp.entities_present])
            await live_through(sim, tp)


def plan(template: Template, mode: CyclicalMode, dialog: DialogConfig) -> list[PlannedCall]:
    """Semantics once; per draft, every state after the origin, a prophecy and a check per later
    cycle, and a judge; then a dialog at every timepoint of the best draft."""
    length, loops = shape(template, mode)
    ids = [e.id for e in template.entities]
    prompt = len(template.premise) + 200 * len(template.entities) + 1200
    states = loops * length - 1
    elements = ["a", "b", "c", "d", "e"]
    return [PlannedCall("steering", 1, prompt, CycleSemantics),
            PlannedCall("steering", mode.path_count * states, prompt + 400, state_schema(ids, elements)),
            PlannedCall("steering", mode.path_count * (loops - 1), prompt + 300 * length,
                        prophecy_schema(list(range(1, loops)))),
            PlannedCall("judge", mode.path_count * loops, prompt + 300 * length, FulfilmentCheck),
            *dialog_plan(template, dialog, opening=1, later=loops * length - 1)]
