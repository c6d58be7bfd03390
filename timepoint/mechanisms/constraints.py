"""M4 constraint enforcement: validators that say what a simulated world must not do, and QSE resources.

Each validator is a plain function over plain data and returns the `Violation`s it finds (none when the
world is consistent). Severity follows the reference: an "error" breaks the world's logic (knowing
something never seen, a timepoint caused by its future); a "warning" flags something implausible
(a personality that swings overnight, gossip that skips the social graph).

The quantitative state engine (QSE) moves template resources (oxygen, cash, herd size...) one
timepoint at a time and reports the moment a resource drops past its critical threshold. No LLM.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, NamedTuple

from pydantic import BaseModel

from ..scenario import Resource
from ..world import ExposureEvent, PhysicalState, Timepoint, causal_ancestry

if TYPE_CHECKING:
    from ..simulation import Simulation

ID = "M4"

Severity = Literal["error", "warning"]

# The validators and their severities (the reference's registry).
SEVERITY: dict[str, Severity] = {
    "information_conservation": "error",
    "behavioral_inertia": "warning",
    "biological_constraints": "error",
    "network_flow": "warning",
    "temporal_causality": "error",
}

MAX_DRIFT = 1.0
# Sources that are not a person: what the entity lived through, and what the scene set up.
SETUP_SOURCES = frozenset({"experience", "scene_initialization"})
# Equal-within-rounding counts as at the limit, so a value exactly at a boundary passes.
_EPS = 1e-9


class Violation(BaseModel):
    """One broken constraint: which validator, how bad, who and when (when known), and what."""

    validator: str
    severity: Severity
    entity_id: str | None = None
    timepoint_id: str | None = None
    message: str


def _violation(validator: str, message: str, entity_id: str | None = None,
               timepoint_id: str | None = None) -> Violation:
    return Violation(validator=validator, severity=SEVERITY[validator], entity_id=entity_id,
                     timepoint_id=timepoint_id, message=message)


def _listed(items: list[str] | set[str], limit: int = 3) -> str:
    shown = sorted(items)[:limit]
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return "; ".join(repr(i) for i in shown) + more


def information_conservation(known: dict[str, set[str]], exposed: dict[str, set[str]]) -> list[Violation]:
    """Knowledge ⊆ exposures: nobody may know what they were never exposed to."""
    out = []
    for eid in sorted(known):
        unseen = known[eid] - exposed.get(eid, set())
        if unseen:
            out.append(_violation("information_conservation",
                                  f"{eid} knows {len(unseen)} item(s) it was never exposed to: {_listed(unseen)}",
                                  eid))
    return out


def behavioral_inertia(before: dict[str, list[float]], after: dict[str, list[float]]) -> list[Violation]:
    """Personality changes slowly: an L2 drift of the behaviour vector above 1.0 in one step is flagged.

    Entities missing from either side are skipped; vectors of unequal length compare their common prefix.
    """
    out = []
    for eid in sorted(set(before) & set(after)):
        n = min(len(before[eid]), len(after[eid]))
        drift = math.dist(before[eid][:n], after[eid][:n])
        if drift > MAX_DRIFT + _EPS:
            out.append(_violation("behavioral_inertia",
                                  f"{eid}'s behaviour drifted {drift:.3f} (limit {MAX_DRIFT:g})", eid))
    return out


class BodyRule(NamedTuple):
    """Actions (verbs, matched with their regular inflections) a body in some state cannot do."""

    verbs: tuple[str, ...]
    forbids: Callable[[PhysicalState], bool]
    reason: str


STRENUOUS = ("run", "sprint", "climb", "fight", "lift", "carry", "swim")

# The age-vs-action rule table. Ages are years; mobility 0 is the reference's non-human default.
BODY_RULES: tuple[BodyRule, ...] = (
    BodyRule(STRENUOUS, lambda p: p.age < 5 or p.age > 90, "strenuous action outside ages 5-90"),
    BodyRule(("drive", "pilot"), lambda p: p.age < 16, "driving or piloting under 16"),
    BodyRule(("walk", "run", "sprint", "climb", "dance", "swim"), lambda p: p.mobility == 0,
             "moving with mobility 0"),
)


def _forms(verb: str) -> set[str]:
    """A verb and its regular inflections: run → runs, running; drive → drives, driving."""
    stem = verb[:-1] if verb.endswith("e") else verb
    return {verb, verb + "s", verb + "ed", stem + "ed", stem + "ing", verb + verb[-1] + "ing"}


def biological_constraints(entities: dict[str, PhysicalState], actions: dict[str, str],
                           resources: dict[str, float] | None = None,
                           specs: dict[str, Resource] | None = None) -> list[Violation]:
    """Bodies limit actions (`BODY_RULES`), and tracked resources stay within their min/max.

    Whole words are matched, so "the runway" is not running. Resource checks need both
    `resources` (current values) and `specs`; they carry no entity.
    """
    out = []
    for eid in sorted(actions):
        body = entities.get(eid)
        if body is None:
            continue
        words = set(re.findall(r"[a-z]+", actions[eid].lower()))
        for rule in BODY_RULES:
            if any(words & _forms(v) for v in rule.verbs) and rule.forbids(body):
                out.append(_violation("biological_constraints",
                                      f"{eid} (age {body.age:g}, mobility {body.mobility:g}) cannot "
                                      f"{actions[eid]!r}: {rule.reason}", eid))
    for name, value in sorted((resources or {}).items()):
        spec = (specs or {}).get(name)
        if spec is None:
            continue
        if (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max):
            out.append(_violation("biological_constraints",
                                  f"resource {name} = {value:g} {spec.unit} is outside [{spec.min}, {spec.max}]"))
    return out


def network_flow(new_items: dict[str, list[tuple[str, str]]], neighbours: dict[str, set[str]],
                 setup_sources: frozenset[str] = SETUP_SOURCES) -> list[Violation]:
    """New knowledge travels along the social graph: each (information, source) an entity gained
    must come from a graph neighbour, the entity itself (its own experience or reflection), or a
    non-person source in `setup_sources` ("experience", "scene_initialization"; pass more, e.g.
    "intervention", to accept them)."""
    out = []
    for eid in sorted(new_items):
        allowed = neighbours.get(eid, set()) | {eid} | setup_sources
        stray = {f"{info} (from {src})" for info, src in new_items[eid] if src not in allowed}
        if stray:
            out.append(_violation("network_flow",
                                  f"{eid} learned {len(stray)} item(s) from outside its neighbours: {_listed(stray)}",
                                  eid))
    return out


def temporal_causality(timepoints: list[Timepoint]) -> list[Violation]:
    """Causes come first: every causal parent exists and is strictly earlier, and no chain loops."""
    by_id = {tp.id: tp for tp in timepoints}
    out = []
    cycles: set[frozenset[str]] = set()
    for tp in timepoints:
        if tp.causal_parent is None:
            continue
        parent = by_id.get(tp.causal_parent)
        if parent is None:
            out.append(_violation("temporal_causality", f"{tp.id}'s causal parent {tp.causal_parent} does not exist",
                                  timepoint_id=tp.id))
            continue
        if parent.timestamp >= tp.timestamp:
            out.append(_violation("temporal_causality",
                                  f"{tp.id} ({tp.timestamp.isoformat()}) is not after its causal parent "
                                  f"{parent.id} ({parent.timestamp.isoformat()})", timepoint_id=tp.id))
        # Following parents from `parent` stops where it revisits: if that walk meets `tp`, it is the loop.
        loop = causal_ancestry(by_id, parent)
        if tp.id in loop and frozenset(loop) not in cycles:
            cycles.add(frozenset(loop))
            out.append(_violation("temporal_causality", f"causal cycle through {', '.join(sorted(loop))}",
                                  timepoint_id=tp.id))
    return out


# --- QSE resources ---------------------------------------------------------------------------------

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")


def parse_rate(rate: float | str) -> float:
    """A resource's change per step. A string such as "6_crew * 0.84_kg_per_hour" is a consumption:
    the product of the first number in each `*` factor, made negative (−5.04). A number is taken as is."""
    if not isinstance(rate, str):
        return float(rate)
    product = 1.0
    for factor in rate.split("*"):
        number = _NUMBER.search(factor)
        if number is None:
            raise ValueError(f"no number in rate factor {factor.strip()!r} of {rate!r}")
        product *= float(number.group())
    return -abs(product)


def step_resources(values: dict[str, float], specs: dict[str, Resource], present: int,
                   modifiers: dict[str, float] | None = None) -> tuple[dict[str, float], list[str]]:
    """One timepoint of every resource: value += rate + modifier, clamped to min/max.

    Returns the new values and the trigger events of resources that crossed their critical
    threshold downward this step (before > threshold ≥ after), so each crossing fires once.
    The reference multiplies a rate by the number of entities `present` when the resource has no
    `affects_entities`; our template `rate` is already the whole change per timepoint (and Resource
    has no affects list), so `present` is accepted but does not scale it. A resource missing from
    `values` starts at its `initial`; values without a spec pass through unchanged.
    """
    modifiers = modifiers or {}
    new = dict(values)
    events = []
    for name, spec in specs.items():
        before = values.get(name, spec.initial)
        after = before + parse_rate(spec.rate) + modifiers.get(name, 0.0)
        if spec.min is not None:
            after = max(spec.min, after)
        if spec.max is not None:
            after = min(spec.max, after)
        new[name] = round(after, 6)
        threshold = spec.critical_threshold
        if threshold is not None and before > threshold >= new[name]:
            events.append(spec.trigger_event or f"{name} fell to {new[name]:g} {spec.unit}, below {threshold:g}")
    return new, events


RUN_SOURCES = SETUP_SOURCES | {"intervention", "resources"}  # sources that are no person, besides set-up


def actions(sim: Simulation, tp) -> dict[str, str]:
    """What each person present does at `tp`: the event's sentences that name them."""
    sentences = re.split(r"(?<=[.!?])\s+", tp.event)
    done = {}
    for eid in tp.entities_present:
        names = {w.lower() for w in sim.entities[eid].name.split() if len(w) > 2} | {eid}
        mine = [s for s in sentences if names & set(re.findall(r"[a-z_]+", s.lower()))]
        if mine:
            done[eid] = " ".join(mine)
    return done


def at_end(sim: Simulation) -> bool:
    """Judge the lived timeline and record every finding in the `validations` table."""
    lived = sim.timepoints
    together: dict[str, set[str]] = {eid: set() for eid in sim.entities}
    for tp in lived:
        for eid in tp.entities_present:
            together.setdefault(eid, set()).update(tp.entities_present)
    first_states = {}
    for row in sim.store.rows("entity_states", "seq"):
        first_states.setdefault(row["entity_id"], json.loads(row["tensor"])["behavior"])
    stored = {}
    for row in sim.store.rows("exposure_events"):
        stored.setdefault(row["entity_id"], set()).add(row["information"])
    told = {eid: [(e.information, e.source) for e in events if e.event_type == "told"]
            for eid, events in sim.exposures.items()}
    bodies = {eid: e.physical for eid, e in sim.entities.items()}
    found = [
        *temporal_causality(lived),
        *information_conservation({eid: sim.known(eid) for eid in sim.entities}, stored),
        *network_flow(told, together, RUN_SOURCES),
        *behavioral_inertia(first_states, {eid: e.tensor.behavior for eid, e in sim.entities.items()}),
        *(v.model_copy(update={"timepoint_id": tp.id}) for tp in lived
          for v in biological_constraints(bodies, actions(sim, tp))),
    ]
    sim.store.add_validations([v.model_dump() for v in found])
    return True


def at_timepoint(sim: Simulation, tp) -> bool:
    """Tracked resources move by their rate each timepoint (BRANCHING moves its own per branch);
    a resource crossing its critical threshold is an event everyone present experiences."""
    specs = sim.template.resources
    if not specs or "resources" in tp.metadata:
        return False
    earlier = next((t.metadata["resources"] for t in reversed(sim.timepoints) if "resources" in t.metadata), None)
    if earlier is None:
        values, alarms = {name: r.initial for name, r in specs.items()}, []
    else:
        values, alarms = step_resources(earlier, specs, len(tp.entities_present))
    tp.metadata["resources"] = {name: round(v, 4) for name, v in values.items()}
    if alarms:
        tp.metadata["resource_alerts"] = alarms
        sim.expose([ExposureEvent(entity_id=eid, event_type="experienced", information=alarm, source="resources",
                                  timestamp=tp.timestamp, confidence=1.0, timepoint_id=tp.id)
                    for alarm in alarms for eid in tp.entities_present])
    return True
