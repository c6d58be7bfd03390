"""BRANCHING (M12, M17): counterfactual timelines grown forward from the opening.

Every step each surviving state gets one model call: at a branch point (by schedule, or when the
state turns on a decision) it forks into divergent consequents — positive, negative, twist — and
elsewhere it continues once. Interventions declared in the template fork extra counterfactual
branches at their step. Every prompt carries the premise, the cast, the accumulated world state
(key events, tracked resources) and what is counterfactual on that branch. Paths are ranked by
coherence; the best becomes "main" and is lived through with dialogs; every other path is kept as
its own timeline whose first timepoint hangs from its branch point on its parent timeline.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, create_model

from ..concurrency import gather_all
from ..config import BranchingMode, DialogConfig
from ..dialog.prompts import spoken_time
from ..errors import SimulationError, UserError
from ..estimate import PlannedCall
from ..llm.schema_cache import cached_schema
from ..scenario import Intervention, Resource, Template
from ..simulation import Simulation
from ..world import ExposureEvent
from .common import Moment, at_least_two, dialog_plan, keep, linked, live_through, state_fields
from .judging import Rating, brief, rate_link

log = logging.getLogger(__name__)

OUTCOMES = ("positive", "negative", "twist")
DECISION_WORDS = ("decide", "choice", "confront", "negotiate", "choose", "fork", "branch", "option",
                  "alternative", "either")


@dataclass
class Branch:
    """A state on the tree of timelines."""

    id: str
    step: int
    at: datetime
    description: str
    key_events: list[str]
    entities: list[str]
    causal_link: str
    outcome: str                       # origin | continuation | positive | negative | twist | intervention
    plausibility: float
    resources: dict[str, float]
    interventions: list[Intervention] = field(default_factory=list)
    parent: Branch | None = None
    forked: bool = False               # its children diverged here

    def chain(self) -> list[Branch]:
        """Root first."""
        chain, current = [], self
        while current is not None:
            chain.append(current)
            current = current.parent
        return list(reversed(chain))

    def history(self) -> list[str]:
        """The last ten key events that led here (resource alarms included)."""
        return [e for b in self.chain() for e in b.key_events][-10:]


def steps_of(template: Template, mode: BranchingMode) -> int:
    return mode.steps or max(1, template.timepoints - 1)


NEEDS = ("M12",)  # BRANCHING is counterfactual branching


def check(template: Template, mode: BranchingMode) -> None:
    steps = steps_of(template, mode)
    late = [iv for iv in template.interventions if iv.step > steps]
    if late:
        raise UserError(f"interventions: step {late[0].step} ({late[0].description[:60]!r}) is past the run's "
                        f"last step {steps}; allowed: 1..{steps} (mode.steps, or the template's timepoints − 1)")


def forks_at(step: int, description: str, steps: int, branch_count: int) -> bool:
    """A state forks by schedule (every steps//branch_count steps after the first) or when it turns
    on a decision."""
    scheduled = step > 0 and step % max(1, steps // branch_count) == 0
    return scheduled or any(w in description.lower() for w in DECISION_WORDS)


def labels(count: int) -> list[str]:
    """positive, negative, twist, positive_2, ... — one named slot per consequent, so they diverge."""
    return [OUTCOMES[i % 3] + (f"_{i // 3 + 1}" if i >= 3 else "") for i in range(count)]


@cached_schema
def consequents_schema(entity_ids: list[str], slots: list[str], resources: list[str]) -> type[BaseModel]:
    fields = dict(
        **state_fields(entity_ids, "What happens next, concretely: names, numbers",
                       "Why this follows from the current state"),
    )
    if resources:
        change = create_model("ResourceChange", resource=(Literal[tuple(resources)], ...), change=(float, ...))
        fields["resource_changes"] = (list[change], Field(max_length=len(resources),
                                                          description="Changes beyond the usual rate"))
    consequent = create_model("Consequent", **fields)
    return create_model("Consequents", **{slot: (consequent, ...) for slot in slots})


class Brancher:
    def __init__(self, sim: Simulation, mode: BranchingMode):
        self.sim, self.mode = sim, mode
        self.steps = steps_of(sim.template, mode)
        self.resources: dict[str, Resource] = sim.template.resources

    def root(self) -> Branch:
        return Branch(id="root", step=0, at=self.sim.time_of(0),
                      description=self.sim.opening_event or self.sim.template.premise, key_events=[],
                      entities=list(self.sim.entities), causal_link="opening of the scenario", outcome="origin",
                      plausibility=1.0, resources={k: r.initial for k, r in self.resources.items()})

    def cast(self, branch: Branch) -> list[str]:
        removed = {iv.target for iv in branch.interventions if iv.type == "entity_removal"}
        return [eid for eid in self.sim.entities if eid not in removed]

    def _world(self, branch: Branch) -> str:
        lines = [f"Step {branch.step + 1} of {self.steps}. It is now {spoken_time(branch.at)}."]
        history = branch.history()
        if history:
            lines.append("Recent key events:\n" + "\n".join(f"- {e}" for e in history[-5:]))
        if branch.resources:
            shown = list(branch.resources.items())[:8]
            lines.append("Resources: " + "; ".join(f"{k} {v:g} {self.resources[k].unit}{self._alarm(k, v)}"
                                                   for k, v in shown))
        if branch.interventions:
            lines.append("Counterfactual in this timeline:\n" + "\n".join(f"- {iv.description}"
                                                                         for iv in branch.interventions))
        return "\n".join(lines)

    def _alarm(self, name: str, value: float) -> str:
        threshold = self.resources[name].critical_threshold
        return " (CRITICAL)" if threshold is not None and value <= threshold else ""

    async def expand(self, branch: Branch) -> list[Branch]:
        """Fork or continue `branch` by one step, plus one counterfactual per intervention due then."""
        step = branch.step + 1
        branch.forked = forks_at(branch.step, branch.description, self.steps, self.mode.branch_count)
        slots = labels(self.mode.candidates_per_step) if branch.forked else ["continuation"]
        calls = [self._consequents(branch, slots, branch.interventions, 0.9 if branch.forked else 0.7)]
        due = [iv for iv in self.sim.template.interventions if iv.step == step]
        calls += [self._consequents(branch, ["intervention"], [*branch.interventions, iv], 0.9) for iv in due]
        groups = await gather_all(*(self.sim.attempt(f"branch consequents ({branch.id}, step {step})", call)
                                    for call in calls))
        children = [c for group in groups if group for c in group]
        scores = await gather_all(*(self.sim.attempt(f"rating ({c.id})", rate_link(
            self.sim, (branch.at, branch.description), (c.at, c.description), c.causal_link)) for c in children))
        for child, score in zip(children, scores):
            child.plausibility = score
        return [c for c, score in zip(children, scores) if score is not None]  # an unrated child is dropped

    async def _consequents(self, branch: Branch, slots: list[str], interventions: list[Intervention],
                           temperature: float) -> list[Branch]:
        step = branch.step + 1
        probe = Branch(**{**branch.__dict__, "interventions": interventions})
        cast = self.cast(probe)
        kinds = ("one positive, one negative, one twist: genuinely different futures" if len(slots) > 1
                 else "the single most likely continuation")
        cancelled = [iv for iv in interventions if iv.type == "event_cancellation"]
        reply = await self.sim.gateway.structured("steering", [
            {"role": "system", "content": "You branch a social simulation into counterfactual timelines. Stay true "
                                          "to the premise; do not drift from it. Answer in JSON."},
            {"role": "user", "content": f"{brief(self.sim)}\n\n{self._world(probe)}\n\nCurrent state: "
                                        f"{branch.description}\n\n"
                                        + "".join(f"This did not happen: {iv.target}.\n" for iv in cancelled)
                                        + f"Write what happens by {spoken_time(self.sim.time_of(step))} — {kinds}. "
                                          f"Only these people can take part: {', '.join(cast)}."},
        ], consequents_schema(cast, slots, list(self.resources)), temperature=temperature, frequency_penalty=0.3)
        children = []
        for i, slot in enumerate(slots):
            c = getattr(reply, slot)
            outcome = slot.split("_")[0]
            resources, alarms = self._advance(branch.resources, getattr(c, "resource_changes", []))
            children.append(Branch(
                id=f"{branch.id}_{outcome}_{i}", step=step, at=self.sim.time_of(step), description=c.description,
                key_events=[*c.key_events, *alarms], entities=at_least_two(c.entities_involved, cast),
                causal_link=c.causal_link, outcome=outcome, plausibility=0.0, resources=resources,
                interventions=interventions, parent=branch))
        return children

    def _advance(self, current: dict[str, float], changes: list) -> tuple[dict[str, float], list[str]]:
        """Each resource moves by its rate plus the model's changes, within its bounds; crossing its
        critical threshold is itself a key event."""
        delta = {name: r.rate for name, r in self.resources.items()}
        for change in changes:
            delta[change.resource] += change.change
        values, alarms = {}, []
        for name, r in self.resources.items():
            value = current[name] + delta[name]
            value = max(r.min, value) if r.min is not None else value
            value = min(r.max, value) if r.max is not None else value
            values[name] = round(value, 4)
            t = r.critical_threshold
            if t is not None and current[name] > t >= value:
                alarms.append(r.trigger_event or f"{name} fell to {value:g} {r.unit}, below {t:g}")
        return values, alarms

    def prune(self, states: list[Branch]) -> list[Branch]:
        """Past 3·branch_count, keep the best 2·branch_count — and the best carrier of every
        intervention, so a declared counterfactual is never pruned away."""
        k = self.mode.branch_count
        if len(states) <= 3 * k:
            return states
        ranked = sorted(states, key=lambda b: -coherence(b.chain()))
        kept = ranked[:2 * k]
        for iv in self.sim.template.interventions:
            carriers = [b for b in ranked if iv in b.interventions]
            if carriers and not any(iv in b.interventions for b in kept):
                kept.append(carriers[0])
        return kept

    async def grow(self) -> list[list[Branch]]:
        frontier = [self.root()]
        for step in range(1, self.steps + 1):
            groups = await gather_all(*(self.expand(b) for b in frontier))
            frontier = self.prune([c for g in groups for c in g])
            if not frontier:
                raise SimulationError(f"BRANCHING step {step}: every candidate's call failed (see the gaps table); "
                                      "rerun the same command to resume, finished calls come from the cache")
            log.info("branching step %d: %d states", step, len(frontier))
        return [leaf.chain() for leaf in frontier]


def coherence(path: list[Branch]) -> float:
    scores = [b.plausibility for b in path[1:]]
    return round(statistics.fmean(scores), 4) if scores else 1.0


def _moment(b: Branch) -> Moment:
    return Moment(b.at, b.description, b.entities, b.causal_link, b.plausibility, {
        "branch": b.id, "outcome": b.outcome, "forked": b.forked, "key_events": b.key_events,
        "resources": b.resources, "interventions": [iv.description for iv in b.interventions]})


def _shared(a: list[Branch], b: list[Branch]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] is b[n]:
        n += 1
    return n


def apply(sim: Simulation, iv: Intervention, tp_id: str, at: datetime) -> None:
    """Make an intervention true of the live world from the timepoint where the main timeline takes it."""
    entity = sim.entities.get(iv.target)
    if iv.type == "entity_modification" and entity:
        entity.traits = iv.traits or entity.traits
        entity.goals = iv.goals or entity.goals
        entity.description = f"{entity.description} {iv.description}".strip()
    elif iv.type == "knowledge_alteration":
        for item in iv.forgets:
            sim.forget(iv.target, item)
        sim.expose([ExposureEvent(entity_id=iv.target, event_type="learned", information=item,
                                  source="intervention", timestamp=at, confidence=1.0, timepoint_id=tp_id)
                    for item in iv.learns])
    sim.fire("M12", iv.type, tp_id)


async def run(sim: Simulation) -> None:
    mode: BranchingMode = sim.mode_config
    sim.fire("M17", "branching", None)
    paths = await Brancher(sim, mode).grow()
    ranked = sorted(((coherence(p), p) for p in paths), key=lambda sp: -sp[0])
    kept = [(s, p) for s, p in ranked if s >= 0.8 * mode.coherence_threshold] or ranked[:1]
    for iv in sim.template.interventions:  # a declared counterfactual is kept, flagged when it is weak
        if not any(iv in p[-1].interventions for _, p in kept):
            kept += [sp for sp in ranked if iv in sp[1][-1].interventions][:1]
    tp_ids: dict[str, str] = {}           # branch state id → the timepoint that holds it
    stored: list[tuple[str, list[Branch]]] = []
    for rank, (score, path) in enumerate(kept):
        flags = [] if score >= mode.coherence_threshold else ["low_coherence"]
        if score < 0.8 * mode.coherence_threshold:
            flags.append("below_threshold")
        timeline = "main" if rank == 0 else f"branch_{rank}"
        parent, shared = None, 0
        for other, other_path in stored:
            n = _shared(path, other_path)
            if n > shared:
                parent, shared = other, n
        outcome = next((b.outcome for b in path[max(shared, 1):] if b.outcome != "continuation"), "continuation")
        sim.store.save_timeline(
            timeline, mode="branching", rank=rank, coherence=score, flags=flags,
            parent=parent, branch_point=tp_ids.get(path[shared - 1].id) if parent else None,
            metadata={"name": f"{outcome.title()} branch", "outcome": outcome,
                      "branch_points": [k for k, b in enumerate(path) if b.forked],
                      "interventions": [iv.description for iv in path[-1].interventions],
                      "resources": path[-1].resources})
        prefix = "" if rank == 0 else f"b{rank}_"
        for b in path[shared:]:
            tp_ids[b.id] = f"{prefix}tp_{b.step:03d}"
        if rank:
            keep(sim, [_moment(b) for b in path[shared:]], timeline, prefix,
                 parent=tp_ids[path[shared - 1].id] if shared else None, first_index=shared)
            sim.fire("M12", "branch", tp_ids[path[shared].id])
        stored.append((timeline, path))
    best = kept[0][1]
    for tp, b in zip(linked([_moment(b) for b in best], "main"), best):
        with sim.store.step():  # an intervention is written with the timepoint that takes it
            for iv in b.interventions:
                if iv not in (b.parent.interventions if b.parent else []):
                    apply(sim, iv, tp.id, tp.timestamp)
            await live_through(sim, tp)


def plan(template: Template, mode: BranchingMode, dialog: DialogConfig) -> list[PlannedCall]:
    """The tree as the schedule grows it (decision words can add forks), a judge per consequent,
    then a dialog per main-timeline timepoint."""
    steps = steps_of(template, mode)
    ids = [e.id for e in template.entities]
    k, n = mode.branch_count, mode.candidates_per_step
    states, generate, judge = 1, 0, 0
    for step in range(1, steps + 1):
        due = sum(iv.step == step for iv in template.interventions)
        fan = n if forks_at(step - 1, "", steps, k) else 1
        generate += states * (1 + due)
        children = states * (fan + due)
        judge += children
        states = children if children <= 3 * k else 2 * k
    prompt = len(template.premise) + 200 * len(template.entities) + 1200
    schema = consequents_schema(ids, labels(n), list(template.resources))
    return [PlannedCall("steering", generate, prompt, schema),
            PlannedCall("judge", judge, prompt, Rating),
            *dialog_plan(template, dialog, opening=1, later=steps)]
