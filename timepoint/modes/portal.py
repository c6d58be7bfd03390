"""PORTAL (M17): from a known endpoint back to its origin.

Per backward step every surviving state gets N candidate antecedents, scored statically (one rating
call per candidate) or by simulation judging (a short forward simulation per candidate, then one
judge call); states are pruned to 2·paths past 3·paths. Paths are read endpoint-first; weak paths
backtrack by regrowing from a better sibling of their weakest state. Oscillating exploration grows
from both ends and bridges them. Every path is kept as a timeline; dialogs follow the best one,
origin first, so knowledge flows with causality.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, Field, create_model

from ..concurrency import gather_all
from ..config import DialogConfig, PortalMode
from ..dialog.prompts import spoken_time
from ..errors import SimulationError, UserError
from ..estimate import PlannedCall
from ..llm.schema_cache import cached_schema
from ..scenario import Template, available_templates, load_template
from ..simulation import Simulation
from .common import Moment, at_least_two, dialog_plan, follow, keep, state_fields
from .judging import RATING, Rating, brief, ranking_schema, rate_link

log = logging.getLogger(__name__)

PIVOT_WORDS = ("decision", "decide", "pivot", "launch", "founded", "acquire", "funding", "crisis", "fail",
               "hire", "scale", "approve", "cancel", "overrule", "sign")


@dataclass
class State:
    id: str
    at: datetime
    description: str
    key_events: list[str]
    entities: list[str]
    causal_link: str
    plausibility: float
    source: State | None = None                    # the state it was grown from
    siblings: list[State] = field(default_factory=list, repr=False)


def _steps(sim: Simulation, mode: PortalMode) -> int:
    return mode.backward_steps or max(1, sim.template.timepoints - 1)


def check(template: Template, mode: PortalMode) -> None:
    if template.portal is None:
        with_portal = [name for name in available_templates() if load_template(name)[0].portal]
        raise UserError(f"mode=portal needs a template with a portal section (endpoint, at); "
                        f"{template.world_id!r} has none; portal templates: {', '.join(with_portal)}")


def _exploration(mode: PortalMode, steps: int) -> str:
    if mode.exploration == "adaptive":
        return "oscillating" if steps > mode.oscillation_threshold else "reverse_chronological"
    return mode.exploration


@cached_schema
def states_schema(entity_ids: list[str], count: int, direction: str) -> type[BaseModel]:
    state = create_model(
        "CandidateState",
        **state_fields(entity_ids, f"The situation at that time, concretely: names, numbers, trade-offs ({direction})",
                       "How it connects to the other state", length=300),
    )
    return create_model("CandidateStates", candidates=(list[state], Field(min_length=count, max_length=count)))


class Portal:
    def __init__(self, sim: Simulation, mode: PortalMode):
        self.sim, self.mode = sim, mode
        self.portal = sim.template.portal
        self.steps = _steps(sim, mode)
        self.ids = list(sim.entities)

    def time_at(self, step: int) -> datetime:
        """Step 0 is the endpoint, step `steps` the origin."""
        start, end = self.sim.template.time.start, self.portal.at
        return end - (end - start) * (step / self.steps)

    # -- generation and scoring ------------------------------------------------------------

    async def _generate(self, anchor: State, at: datetime, backward: bool) -> list[State]:
        """Candidates grown from `anchor`, scored; none if the call that writes them failed (a gap)."""
        states = await self.sim.attempt(f"portal candidates ({anchor.id})", self._write(anchor, at, backward))
        if not states:
            return []
        states = await self._score(anchor, states, backward)
        for s in states:
            s.siblings = [o for o in states if o is not s]
        return states

    async def _write(self, anchor: State, at: datetime, backward: bool) -> list[State]:
        n = self.mode.candidates_per_step
        direction = "what came before and caused it" if backward else "what followed from it"
        task = (f"Known situation at {spoken_time(anchor.at)}:\n{anchor.description}\n\nPropose {n} distinct, "
                f"concrete situations at {spoken_time(at)} — {direction}. Each must name people, give numbers, "
                "show a trade-off, and differ from the others in what went wrong or right.")
        reply = await self.sim.gateway.structured("steering", [
            {"role": "system", "content": "You reason about causes and consequences in a social simulation. "
                                          "Answer in JSON."},
            {"role": "user", "content": f"{brief(self.sim)}\n\n{task}"},
        ], states_schema(self.ids, n, direction), temperature=0.8, frequency_penalty=0.3)
        return [State(id=f"{anchor.id}.{i}", at=at, description=c.description, key_events=c.key_events,
                      entities=at_least_two(c.entities_involved, self.ids), causal_link=c.causal_link,
                      plausibility=0.0) for i, c in enumerate(reply.candidates)]

    async def _score(self, anchor: State, states: list[State], backward: bool) -> list[State]:
        """The candidates with their plausibility; a candidate whose rating failed is dropped."""
        if self.mode.scoring == "simulation" and await self.sim.attempt(
                f"portal simulation judging ({anchor.id})", self._judge_by_simulation(anchor, states, backward)):
            return states
        # static ratings: the scoring mode, or standing in for a simulation judging that failed
        ratings = await gather_all(*(self.sim.attempt(f"rating ({s.id})", self._rate(anchor, s, backward))
                                     for s in states))
        for s, r in zip(states, ratings):
            s.plausibility = r
        return [s for s, r in zip(states, ratings) if r is not None]

    async def _rate(self, anchor: State, state: State, backward: bool) -> float:
        earlier, later = (state, anchor) if backward else (anchor, state)
        return await rate_link(self.sim, (earlier.at, earlier.description), (later.at, later.description),
                               state.causal_link)

    async def _simulate(self, start: State, toward: State) -> str:
        """A short forward simulation from a candidate toward the state it should lead to."""
        narrative, current = [], start.description
        for k in range(self.mode.simulation_forward_steps):
            reply = await self.sim.gateway.structured("steering", [
                {"role": "system", "content": "You simulate what happens next, one step at a time. Answer in JSON."},
                {"role": "user", "content": f"{brief(self.sim)}\n\nNow: {current}\nWhat happens next, step {k + 1} "
                                            f"of {self.mode.simulation_forward_steps} toward "
                                            f"{spoken_time(toward.at)}?"},
            ], create_model("SimulatedStep", next_state=(str, Field(max_length=300))), temperature=0.7,
                frequency_penalty=0.3)
            narrative.append(reply.next_state)
            current = reply.next_state
        return " → ".join(narrative)

    async def _judge_by_simulation(self, anchor: State, states: list[State], backward: bool) -> bool:
        sims = await gather_all(*(self._simulate(s, anchor) if backward else self._simulate(anchor, s)
                                      for s in states))
        listing = "\n".join(f"{i + 1}. {s.description}\n   simulated: {run}" for i, (s, run) in
                            enumerate(zip(states, sims)))
        ranking = await self.sim.gateway.structured("judge", [
            {"role": "system", "content": "You judge which simulated histories best reach the known state. "
                                          "Score every candidate, in order. Answer in JSON."},
            {"role": "user", "content": f"{brief(self.sim)}\n\nKnown state ({spoken_time(anchor.at)}): "
                                        f"{anchor.description}\n\nCandidates:\n{listing}"},
        ], ranking_schema(len(states)), temperature=0.3)
        for s, score in zip(states, ranking.scores):
            s.plausibility = RATING[score]
        return True

    # -- search ---------------------------------------------------------------------------

    def _prune(self, states: list[State]) -> list[State]:
        cap = 3 * self.mode.path_count
        if len(states) <= cap:
            return states
        return sorted(states, key=lambda s: -_chain_score(s))[:2 * self.mode.path_count]

    async def _grow(self, frontier: list[State], first: int, last: int, backward: bool) -> list[State]:
        """Grow the frontier through steps first..last (step numbers count back from the endpoint)."""
        order = range(first, last + 1) if backward else range(first, last - 1, -1)
        for step in order:
            groups = await gather_all(*(self._generate(s, self.time_at(step), backward) for s in frontier))
            for anchor, group in zip(frontier, groups):
                for s in group:
                    s.source = anchor
            frontier = self._prune([s for g in groups for s in g])
            if not frontier:
                raise SimulationError(f"PORTAL step {step}: every candidate's call failed (see the gaps table); "
                                      "rerun the same command to resume, finished calls come from the cache")
            log.info("portal step %d: %d states", step, len(frontier))
        return frontier

    async def search(self) -> list[list[State]]:
        endpoint = State(id="endpoint", at=self.portal.at, description=self.portal.endpoint, key_events=[],
                         entities=list(self.ids), causal_link="the known outcome", plausibility=1.0)
        if _exploration(self.mode, self.steps) == "reverse_chronological" or self.steps < 3:
            ends = await self._grow([endpoint], 1, self.steps, backward=True)
            return [_chain(s) for s in ends]
        return await self._oscillate(endpoint)

    async def _oscillate(self, endpoint: State) -> list[list[State]]:
        """Grow back from the endpoint and forward from the origin in turn; bridge where they meet."""
        origin = State(id="origin", at=self.time_at(self.steps), description=self.sim.opening_event or
                       self.sim.template.premise, key_events=[], entities=list(self.ids),
                       causal_link="the starting situation", plausibility=1.0)
        meet = self.steps // 2
        back, fwd = [endpoint], [origin]
        b_step, f_step = 1, self.steps - 1
        while b_step <= meet or f_step > meet:
            if b_step <= meet:
                back = await self._grow(back, b_step, b_step, backward=True)
                b_step += 1
            if f_step > meet:
                fwd = await self._grow(fwd, f_step, f_step, backward=False)
                f_step -= 1
        best_back = sorted(back, key=lambda s: -_chain_score(s))[:self.mode.path_count]
        best_fwd = sorted(fwd, key=lambda s: -_chain_score(s))[:self.mode.path_count]
        pairs = [(b, f) for b in best_back for f in best_fwd]
        ratings = await gather_all(*(self.sim.attempt(f"bridge rating ({b.id}, {f.id})", self._rate(b, f, True))
                                     for b, f in pairs))
        paths = []
        for (b, f), bridge in zip(pairs, ratings):
            if bridge is None:
                continue  # an unrated bridge is not a path
            forward_part = list(reversed(_chain(f)))      # meeting state … origin, endpoint-first order
            forward_part[0] = _with(forward_part[0], plausibility=statistics.fmean([forward_part[0].plausibility,
                                                                                     bridge]))
            paths.append(_chain(b) + forward_part)
        return paths

    async def backtrack(self, path: list[State]) -> list[State] | None:
        """Regrow a weak path from the best better sibling of its weakest state, up to the depth allowed."""
        for _ in range(self.mode.max_backtrack_depth):
            inner = path[1:]
            weakest = min(inner, key=lambda s: s.plausibility)
            better = sorted((s for s in weakest.siblings if s.plausibility > weakest.plausibility),
                            key=lambda s: -s.plausibility)
            if not better:
                return None
            k = path.index(weakest)
            regrown = [better[0]]
            for step in range(k + 1, len(path)):
                candidates = await self._generate(regrown[-1], self.time_at(step), backward=True)
                if not candidates:
                    return None  # regrowing failed: the path stays weak and is dropped
                best = max(candidates, key=lambda s: s.plausibility)
                best.source = regrown[-1]
                regrown.append(best)
            path = path[:k] + regrown
            if coherence(path) >= 0.5:
                return path
        return None


def _with(state: State, **changes) -> State:
    return State(**{**state.__dict__, **changes})


def _chain(state: State) -> list[State]:
    """From a state back to where its growth began (the endpoint, or the origin)."""
    chain = []
    current: State | None = state
    while current is not None:
        chain.append(current)
        current = current.source
    return list(reversed(chain))


def _chain_score(state: State) -> float:
    scores = [s.plausibility for s in _chain(state)[1:]]
    return statistics.fmean(scores) if scores else 1.0


def coherence(path: list[State]) -> float:
    """Mean plausibility of the generated states (the given endpoint and origin are not scored)."""
    scores = [s.plausibility for s in path if s.id not in ("endpoint", "origin")]
    return round(statistics.fmean(scores), 4) if scores else 1.0


def divergence(paths: list[list[State]]) -> dict:
    """Per step, the share of distinct descriptions across paths; steps above 0.5 are key divergences."""
    steps = min(len(p) for p in paths)
    ratios = [round(len({p[k].description[:100] for p in paths}) / len(paths), 4) for k in range(steps)]
    return {"ratios": ratios, "key_points": [k for k, r in enumerate(ratios) if r > 0.5]}


def pivots(path: list[State], ratios: list[float]) -> list[int]:
    """Steps where the story turns: divergence, decisive words, many key events, or a plausibility jump."""
    mean = statistics.fmean(s.plausibility for s in path)
    found = set()
    for k, s in enumerate(path):
        text = f"{s.description} {' '.join(s.key_events)}".lower()
        neighbours = [path[j].plausibility for j in (k - 1, k + 1) if 0 <= j < len(path)]
        if (k < len(ratios) and ratios[k] > 0.3) or any(w in text for w in PIVOT_WORDS) or len(s.key_events) > 2 \
                or any(abs(s.plausibility - p) > 0.2 for p in neighbours) or s.plausibility < mean - 0.15:
            found.add(k)
    return sorted(found)


async def run(sim: Simulation) -> None:
    mode: PortalMode = sim.mode_config
    portal = Portal(sim, mode)
    sim.fire("M17", "portal", None)
    kept = []
    for path in await portal.search():
        score = coherence(path)
        flags = []
        if score < 0.3:
            continue
        if score < 0.5:
            path = await portal.backtrack(path)
            if path is None:
                continue
            score, flags = coherence(path), ["backtracked"]
        if score < mode.coherence_threshold:
            flags.append("low_coherence")
        kept.append((score, path, flags))
    if not kept:
        raise SimulationError("PORTAL: every path fell below coherence 0.3 and none could be backtracked; "
                              "try more candidates_per_step or another model")
    kept.sort(key=lambda k: -k[0])
    spread = divergence([p for _, p, _ in kept])
    for rank, (score, path, flags) in enumerate(kept):
        timeline = "main" if rank == 0 else f"path_{rank}"
        sim.store.save_timeline(timeline, mode="portal", rank=rank, coherence=score, flags=flags,
                                metadata={"pivots": pivots(path, spread["ratios"]), "divergence": spread})
        if rank:
            keep(sim, [_moment(s) for s in reversed(path)], timeline, prefix=f"p{rank}_")
    await follow(sim, [_moment(s) for s in reversed(kept[0][1])])


def _moment(state: State) -> Moment:
    return Moment(state.at, state.description, state.entities, state.causal_link, state.plausibility,
                  {"key_events": state.key_events})


def plan(template: Template, mode: PortalMode, dialog: DialogConfig) -> list[PlannedCall]:
    """Generation and scoring per step as the search runs them, then a dialog per best-path timepoint."""
    steps = mode.backward_steps or max(1, template.timepoints - 1)
    ids = [e.id for e in template.entities]
    n, cap = mode.candidates_per_step, 3 * mode.path_count
    states, generate, score = 1, 0, 0
    for _ in range(steps):
        generate += states
        score += states * (n * mode.simulation_forward_steps + 1 if mode.scoring == "simulation" else n)
        states = states * n if states * n <= cap else 2 * mode.path_count
    prompt = len(template.premise) + 200 * len(template.entities) + 800
    return [PlannedCall("steering", generate, prompt, states_schema(ids, n, "")),
            PlannedCall("judge", score, prompt + 400, Rating),
            *dialog_plan(template, dialog, opening=0, later=steps + 1)]
