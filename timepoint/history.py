"""The read side of a run: its store read into typed objects that answer questions *as of* a timepoint.

Exporters, `timepoint query`, `collect`, `convergence` and `diff` read a run only through `RunHistory`
(writes stay with `RunStore`). Stored JSON is decoded here, once; nothing else parses store rows.

AS OF T means what one had going into T: the snapshot taken at the END of T's causal parent, the
timepoint T follows from. `state`, `relationship`, `mind`, `known` and `atmosphere` read it, so nothing
T itself did — its mechanisms, its dialog, what was said there — is in it. A timepoint without a parent
(the first of the main timeline) reads the opening snapshot `pre_<its id>`, taken before anything
happened there (stores from before opening snapshots answer None). `state_at(e, T)` is the other end:
the snapshot at the END of T, what T left behind. A training record for T0 → T1 shows its entity as
of T1 (its snapshot at the end of T0) and its completion is `state_at(e, T1)`.

Knowledge as of T is what the entity was exposed to before the story (`pre_` timepoints) or at a
causal ancestor of T, T excluded; `known(e, T, during=True)` adds what T exposed it to before its
dialog spoke (all but `told` and `concern`, which the dialog produced). Only the causal ancestry
counts, in every mode: in PORTAL and BRANCHING runs a timepoint generated later may lie earlier in
the story or on another branch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from itertools import combinations
from pathlib import Path

from .dialog.archetypes import archetype_of
from .mechanisms import circadian
from .mechanisms.atmosphere import Atmosphere, atmosphere
from .store import RunStore, open_run
from .world import CognitiveState, Mind, PhysicalState, TTMTensor

OPENING = "pre_"
"""Prefix of the opening snapshot (`pre_tp_000`) and of knowledge held before the story began."""

AFTER_DIALOG = ("told", "concern")
"""Exposures a dialog itself makes at its timepoint: what was said, what it left on someone's mind."""

DEFAULT_TRUST = 0.5
"""A pair with no recorded state counts as neither trusting nor hostile (as M10 counts it)."""


def opening_id(timepoint_id: str) -> str:
    """The id of the snapshot taken before `timepoint_id` was lived (for a timepoint without a parent)."""
    return f"{OPENING}{timepoint_id}"


def _json(text: str | None, default=None):
    return json.loads(text) if text else default


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


# -- typed records ------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunInfo:
    """The run's row: what was run, how it went, what it cost; `config` is the composed config."""

    id: str
    template: str | None
    world_id: str | None
    title: str | None
    premise: str | None
    location: str | None
    mode: str | None
    model: str | None
    model_license: str | None
    training_safe: bool
    seed: int | None
    status: str | None
    error: str | None
    created_at: str | None
    finished_at: str | None
    duration_s: float | None
    llm_calls: int
    cached_calls: int
    tokens_in: int
    tokens_out: int
    tokens_reused: int  # of tokens_in, those a provider reused from an earlier prompt's evaluation
    cost_usd: float
    est_calls: int | None
    est_tokens: int | None
    est_cost_usd: float | None
    config: dict
    shadow_fits: dict | None  # ADPRS envelopes fitted as the run ended; None before they were kept

    @property
    def enabled(self) -> tuple[str, ...] | None:
        """The mechanisms the run enabled; None when the store holds no config (every one then counts)."""
        mechanisms = self.config.get("mechanisms")
        return tuple(mechanisms.get("enabled", ())) if isinstance(mechanisms, dict) else None

    def has(self, mechanism: str) -> bool:
        return self.enabled is None or mechanism in self.enabled


@dataclass(frozen=True)
class EntityRecord:
    """An entity as it ended the run (the `entities` table); its states over time are `EntityState`s."""

    id: str
    name: str
    type: str
    role: str | None
    title: str
    description: str
    traits: list[str]
    goals: list[str]
    voice_guide: dict
    speech_examples: list[str]
    resolution: str | None
    tensor: TTMTensor | None
    cognitive: CognitiveState
    physical: PhysicalState
    mind: Mind
    compressed: dict | None
    maturity: float | None
    query_count: int
    training_count: int

    @property
    def archetype(self) -> str | None:
        return archetype_of(self.title or "", self.description or "")


@dataclass(frozen=True)
class TimepointRecord:
    id: str
    index: int
    timeline_id: str
    timestamp: str
    event: str
    present: list[str]
    causal_parent: str | None
    causal_link: str
    importance: float
    metadata: dict

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.timestamp)


@dataclass(frozen=True)
class TimelineRecord:
    id: str
    parent_id: str | None
    branch_point: str | None
    mode: str | None
    rank: int | None
    coherence: float | None
    flags: list[str]
    metadata: dict


@dataclass(frozen=True)
class EntityState:
    """One entity at the end of one timepoint (or at the opening, `pre_<id>`)."""

    entity_id: str
    timepoint_id: str
    seq: int
    tensor: TTMTensor
    cognitive: CognitiveState
    physical: PhysicalState
    knowledge_count: int
    resolution: str | None
    mind: Mind | None  # None in stores from before per-timepoint minds


@dataclass(frozen=True)
class RelationshipState:
    """A pair (a < b) at the end of one timepoint; `timepoint_id` None for the end of the run."""

    a: str
    b: str
    type: str
    trust: float
    alignment: float
    interactions: int
    timepoint_id: str | None


@dataclass(frozen=True)
class KnownItem:
    """One exposure: what an entity came to know, how, from whom, when and how sure."""

    id: int
    entity_id: str
    event_type: str
    information: str
    source: str
    timestamp: str
    confidence: float
    timepoint_id: str

    @property
    def before_story(self) -> bool:
        return self.timepoint_id.startswith(OPENING)

    @property
    def when(self) -> str:
        """Timepoint id and time, in words fit for a prompt."""
        at = self.timestamp.replace("T", " ")[:16]
        return f"before the story ({at})" if self.before_story else f"at {self.timepoint_id} ({at})"


@dataclass(frozen=True)
class TurnRecord:
    dialog_id: str
    index: int
    speaker: str
    content: str
    emotional_tone: str | None
    knowledge_references: list[str]
    params: dict
    move: str | None
    move_target: str | None


@dataclass(frozen=True)
class DialogRecord:
    id: str
    timepoint_id: str
    participants: list[str]
    summary: str
    turn_count: int
    ending: str | None
    mood: str | None
    quality_score: float | None
    quality_passed: bool | None
    quality_checks: dict
    semantic: dict
    voice_distinctiveness: float | None
    turns: list[TurnRecord] = field(default_factory=list)


@dataclass(frozen=True)
class Room:
    """M10's atmosphere of a timepoint's room: as M10 recorded it when the timepoint began, or (when it
    was not recorded) computed the same way from the states and trust as of the timepoint."""

    atmosphere: Atmosphere
    recorded: bool

    def as_dict(self) -> dict:
        room = self.atmosphere.model_dump(mode="json", exclude={"location"})
        return {**{k: round(v, 4) if isinstance(v, float) else v for k, v in room.items()}, "recorded": self.recorded}


@dataclass(frozen=True)
class Clock:
    """M14 at a timepoint's hour: hours awake since 06:00, fatigue, the night penalty, and what M14
    recorded there when it ran (energy cost, how plausible work is, each one's rest since their last
    scene in hours of sleep)."""

    hour: float
    hours_awake: float
    fatigue: float
    night: bool
    night_penalty: float
    energy_cost: float | None
    work: str | None
    rest_hours: dict[str, float]


@dataclass(frozen=True)
class Position:
    """Where a timepoint sits in its mode's shape: `details` holds what the mode means there (PORTAL's
    step back from the endpoint, BRANCHING's branch and counterfactual, CYCLICAL's cycle and phase,
    DIRECTORIAL's act, tension and point of view)."""

    mode: str
    timeline_id: str
    index: int
    count: int
    details: dict

    def as_dict(self) -> dict:
        return {"mode": self.mode, "timeline_id": self.timeline_id, "index": self.index, "count": self.count,
                **self.details}


@dataclass(frozen=True)
class Usage:
    mechanism: str
    hook: str | None
    timepoint_id: str | None


@dataclass(frozen=True)
class Call:
    role: str | None
    provider: str | None
    model: str | None
    tokens_in: int
    tokens_out: int
    cost_usd: float
    latency_ms: float | None
    cached: bool
    attempts: int | None
    error: str | None


@dataclass(frozen=True)
class Gap:
    unit: str
    timepoint_id: str | None
    role: str | None
    reason: str


# -- the history ----------------------------------------------------------------------------------

class RunHistory:
    """One run, read from its store into typed objects; tables are read when first asked for."""

    def __init__(self, store: RunStore):
        self.store = store

    @classmethod
    def of(cls, source: RunStore | RunHistory) -> RunHistory:
        return source if isinstance(source, RunHistory) else cls(source)

    # -- the run ------------------------------------------------------------------------------

    @cached_property
    def run(self) -> RunInfo:
        r = self.store.run()
        return RunInfo(
            id=r["run_id"], template=r["template"], world_id=r["world_id"], title=r["title"], premise=r["premise"],
            location=r["location"], mode=r["mode"], model=r["model"], model_license=r["model_license"],
            training_safe=bool(r["training_safe"]), seed=r["seed"], status=r["status"], error=r["error"],
            created_at=r["created_at"], finished_at=r["finished_at"], duration_s=r["duration_s"],
            llm_calls=r["llm_calls"] or 0, cached_calls=r["cached_calls"] or 0, tokens_in=r["tokens_in"] or 0,
            tokens_out=r["tokens_out"] or 0, tokens_reused=r["tokens_reused"] or 0, cost_usd=r["cost_usd"] or 0.0,
            est_calls=r["est_calls"],
            est_tokens=r["est_tokens"], est_cost_usd=r["est_cost_usd"], config=_json(r["config_json"], {}),
            shadow_fits=_json(r["shadow_fits"]))

    def counts(self) -> dict[str, int]:
        return self.store.counts()

    def table(self, name: str, decode: Iterable[str] = ()) -> list[dict]:
        """One table's rows as stored, for the formats that copy tables (SQLite, CSV, Parquet); the
        columns named in `decode` are JSON-decoded."""
        columns = set(decode)
        return [{k: _json(v) if k in columns and isinstance(v, str) else v for k, v in row.items()}
                for row in self.store.rows(name)]

    def columns(self, name: str) -> list[str]:
        """A table's columns, from the schema (so an empty table still has them)."""
        self.store.rows(name)  # checks the name
        return [c[0] for c in self.store.db.execute(f"SELECT * FROM {name} LIMIT 0").description]

    # -- entities, time, talk -----------------------------------------------------------------

    @cached_property
    def entities(self) -> dict[str, EntityRecord]:
        out = {}
        for e in self.store.rows("entities"):
            tensor = _json(e["tensor"])
            out[e["entity_id"]] = EntityRecord(
                id=e["entity_id"], name=e["name"] or e["entity_id"], type=e["entity_type"] or "human", role=e["role"],
                title=e["title"] or "", description=e["description"] or "", traits=_json(e["traits"], []),
                goals=_json(e["goals"], []), voice_guide=_json(e["voice_guide"], {}),
                speech_examples=_json(e["speech_examples"], []), resolution=e["resolution"],
                tensor=TTMTensor.model_validate(tensor) if tensor else None,
                cognitive=CognitiveState.model_validate_json(e["cognitive"] or "{}"),
                physical=PhysicalState.model_validate_json(e["physical"] or "{}"),
                mind=Mind.model_validate_json(e["mind"] or "{}"), compressed=_json(e["compressed"]),
                maturity=e["maturity"], query_count=e["query_count"] or 0, training_count=e["training_count"] or 0)
        return out

    def name(self, entity_id: str) -> str:
        ent = self.entities.get(entity_id)
        return ent.name if ent else entity_id

    @cached_property
    def all_timepoints(self) -> dict[str, TimepointRecord]:
        """Every timepoint of every timeline: the main timeline first, then the others by id, each in order."""
        rows = self.store.rows("timepoints", "timeline_id != 'main', timeline_id, idx")
        return {tp["timepoint_id"]: TimepointRecord(
            id=tp["timepoint_id"], index=tp["idx"], timeline_id=tp["timeline_id"], timestamp=tp["timestamp"],
            event=tp["event"] or "", present=_json(tp["entities_present"], []), causal_parent=tp["causal_parent"],
            causal_link=tp["causal_link"] or "", importance=tp["importance"] if tp["importance"] is not None else 0.5,
            metadata=_json(tp["metadata"], {})) for tp in rows}

    @cached_property
    def timepoints(self) -> list[TimepointRecord]:
        """The main timeline, in order: the one dialogs and training data follow."""
        return self.timeline("main")

    def timeline(self, timeline_id: str) -> list[TimepointRecord]:
        return sorted((tp for tp in self.all_timepoints.values() if tp.timeline_id == timeline_id),
                      key=lambda tp: tp.index)

    def timepoint(self, timepoint_id: str | None) -> TimepointRecord | None:
        return self.all_timepoints.get(timepoint_id) if timepoint_id else None

    @cached_property
    def timelines(self) -> dict[str, TimelineRecord]:
        """Best first (rank 0 is `main` when the mode ranked its timelines)."""
        rows = sorted(self.store.rows("timelines"), key=lambda t: (t["rank"] is None, t["rank"], t["timeline_id"]))
        return {t["timeline_id"]: TimelineRecord(
            id=t["timeline_id"], parent_id=t["parent_timeline_id"], branch_point=t["branch_point"], mode=t["mode"],
            rank=t["rank"], coherence=t["coherence"], flags=_json(t["flags"], []), metadata=_json(t["metadata"], {}))
            for t in rows}

    @cached_property
    def causal_edges(self) -> list[tuple[str, str, str]]:
        return [(e["source"], e["target"], e["kind"]) for e in self.store.rows("causal_edges")]

    @cached_property
    def dialogs(self) -> dict[str, DialogRecord]:
        """By timepoint id (a timepoint has one dialog at most), in the order they were written."""
        turns: dict[str, list[TurnRecord]] = {}
        for t in self.store.rows("turns", "dialog_id, idx"):
            turns.setdefault(t["dialog_id"], []).append(TurnRecord(
                dialog_id=t["dialog_id"], index=t["idx"], speaker=t["speaker"], content=t["content"] or "",
                emotional_tone=t["emotional_tone"], knowledge_references=_json(t["knowledge_references"], []),
                params=_json(t["params"], {}), move=t["dialog_move"], move_target=t["move_target"]))
        return {d["timepoint_id"]: DialogRecord(
            id=d["dialog_id"], timepoint_id=d["timepoint_id"], participants=_json(d["participants"], []),
            summary=d["summary"] or "", turn_count=d["turn_count"] or 0, ending=d["ending"], mood=d["mood"],
            quality_score=d["quality_score"],
            quality_passed=None if d["quality_passed"] is None else bool(d["quality_passed"]),
            quality_checks=_json(d["quality_checks"], {}), semantic=_json(d["semantic"], {}),
            voice_distinctiveness=d["voice_distinctiveness"], turns=turns.get(d["dialog_id"], []))
            for d in self.store.rows("dialogs")}

    def speakers(self, tp: TimepointRecord) -> set[str]:
        dialog = self.dialogs.get(tp.id)
        return {t.speaker for t in dialog.turns} if dialog else set()

    @cached_property
    def exposures(self) -> list[KnownItem]:
        """Every exposure, in the order it was recorded."""
        return [KnownItem(id=e["id"], entity_id=e["entity_id"], event_type=e["event_type"],
                          information=e["information"] or "", source=e["source"] or "", timestamp=e["timestamp"] or "",
                          confidence=e["confidence"] if e["confidence"] is not None else 1.0,
                          timepoint_id=e["timepoint_id"] or "") for e in self.store.rows("exposure_events", "id")]

    @cached_property
    def mechanism_usage(self) -> list[Usage]:
        return [Usage(u["mechanism"], u["hook"], u["timepoint_id"]) for u in self.store.rows("mechanism_usage", "id")]

    def mechanisms_fired(self) -> dict:
        """Which mechanisms left usage rows, out of those the run enabled."""
        enabled = list(self.run.enabled or ())
        fired = {u.mechanism for u in self.mechanism_usage}
        return {"enabled": enabled, "fired": [m for m in enabled if m in fired]}

    @cached_property
    def calls(self) -> list[Call]:
        return [Call(role=c["role"], provider=c["provider"], model=c["model"], tokens_in=c["tokens_in"] or 0,
                     tokens_out=c["tokens_out"] or 0, cost_usd=c["cost_usd"] or 0.0, latency_ms=c["latency_ms"],
                     cached=bool(c["cached"]), attempts=c["attempts"], error=c["error"])
                for c in self.store.rows("llm_calls", "id")]

    @cached_property
    def gaps(self) -> list[Gap]:
        return [Gap(g["unit"], g["timepoint_id"], g["role"], g["reason"]) for g in self.store.rows("gaps", "id")]

    # -- snapshots ------------------------------------------------------------------------------

    @cached_property
    def states(self) -> dict[tuple[str, str], EntityState]:
        """(entity, timepoint) → the entity's state at the end of that timepoint (or at an opening)."""
        out = {}
        for s in self.store.rows("entity_states", "seq, rowid"):
            out[(s["entity_id"], s["timepoint_id"])] = EntityState(
                entity_id=s["entity_id"], timepoint_id=s["timepoint_id"], seq=s["seq"],
                tensor=TTMTensor.model_validate_json(s["tensor"]),
                cognitive=CognitiveState.model_validate_json(s["cognitive"]),
                physical=PhysicalState.model_validate_json(s["physical"]), knowledge_count=s["knowledge_count"] or 0,
                resolution=s["resolution"], mind=Mind.model_validate_json(s["mind"]) if s["mind"] else None)
        return out

    @cached_property
    def relationship_states(self) -> dict[tuple[str, str, str], RelationshipState]:
        """(a, b, timepoint) → the pair at the end of that timepoint (or at an opening), a < b."""
        return {(r["entity_a"], r["entity_b"], r["timepoint_id"]): RelationshipState(
            a=r["entity_a"], b=r["entity_b"], type=self.relationship_type(r["entity_a"], r["entity_b"]),
            trust=r["trust"], alignment=r["alignment"], interactions=r["interactions"] or 0,
            timepoint_id=r["timepoint_id"]) for r in self.store.rows("relationship_states")}

    @cached_property
    def final_relationships(self) -> dict[tuple[str, str], RelationshipState]:
        """Each pair as the run left it (the `relationships` table): for end-of-run reports only."""
        return {(r["entity_a"], r["entity_b"]): RelationshipState(
            a=r["entity_a"], b=r["entity_b"], type=r["rel_type"] or "neutral", trust=r["trust"],
            alignment=r["alignment"], interactions=r["interactions"] or 0, timepoint_id=None)
            for r in self.store.rows("relationships")}

    def relationship_type(self, a: str, b: str) -> str:
        """The declared kind of tie (friend, rival...): it never changes during a run."""
        rel = self.final_relationships.get(_pair(a, b))
        return rel.type if rel else "neutral"

    # -- causality --------------------------------------------------------------------------------

    def parent(self, tp: TimepointRecord) -> TimepointRecord | None:
        return self.timepoint(tp.causal_parent)

    def chain(self, tp: TimepointRecord, limit: int | None = None) -> list[TimepointRecord]:
        """`tp` and its causal ancestors (at most `limit` in all), oldest first; cycles cannot loop."""
        chain, seen, current = [], set(), tp
        while current is not None and current.id not in seen and (limit is None or len(chain) < limit):
            chain.append(current)
            seen.add(current.id)
            current = self.parent(current)
        return list(reversed(chain))

    def ancestry(self, tp: TimepointRecord) -> set[str]:
        """The ids of `tp` and every timepoint it descends from."""
        return {t.id for t in self.chain(tp)}

    def before(self, tp: TimepointRecord) -> str:
        """The id of the snapshot `as of tp` reads: its causal parent's, or its own opening snapshot."""
        return tp.causal_parent or opening_id(tp.id)

    # -- as of T -------------------------------------------------------------------------------------

    def state(self, entity_id: str, as_of: TimepointRecord) -> EntityState | None:
        """The entity going into `as_of`: its state at the end of the timepoint before."""
        return self.states.get((entity_id, self.before(as_of)))

    def state_at(self, entity_id: str, tp: TimepointRecord) -> EntityState | None:
        """The entity at the end of `tp`: what `tp` left it with."""
        return self.states.get((entity_id, tp.id))

    def mind(self, entity_id: str, as_of: TimepointRecord) -> Mind | None:
        """Its arc going into `as_of`: tactics tried and how they landed, trust ledger, what is still
        unspoken, what it broods on, what it remembers."""
        state = self.state(entity_id, as_of)
        return state.mind if state else None

    def relationship(self, a: str, b: str, as_of: TimepointRecord) -> RelationshipState | None:
        """The pair going into `as_of` (never the end-of-run value)."""
        return self.relationship_states.get((*_pair(a, b), self.before(as_of)))

    def known(self, entity_id: str, as_of: TimepointRecord, during: bool = False) -> list[KnownItem]:
        """What the entity knew going into `as_of` (see the module docstring); with `during`, also what
        `as_of` itself exposed it to before its dialog: what it could draw on while speaking there."""
        parent = self.parent(as_of)
        visible = self.ancestry(parent) if parent else set()
        mine = [e for e in self.exposures if e.entity_id == entity_id]
        items = [e for e in mine if e.before_story or e.timepoint_id in visible]
        if during:
            items += [e for e in mine if e.timepoint_id == as_of.id and e.event_type not in AFTER_DIALOG
                      and e.source != "elevation"]
            items.sort(key=lambda e: e.id)
        return items

    def gained(self, entity_id: str, tp: TimepointRecord) -> list[KnownItem]:
        """What the entity came to know at `tp` itself (the event, its dialog, its aftermath)."""
        return [e for e in self.exposures if e.entity_id == entity_id and e.timepoint_id == tp.id]

    def known_through(self, entity_id: str, tp: TimepointRecord) -> list[KnownItem]:
        """What the entity knew by the end of `tp`: its ancestry's exposures and `tp`'s own, aftermath included."""
        visible = self.ancestry(tp)
        return [e for e in self.exposures if e.entity_id == entity_id and (e.before_story or e.timepoint_id in visible)]

    def known_at_end(self, entity_id: str) -> list[KnownItem]:
        """Everything the entity knew by the end of the main timeline (what a finished run asks it from)."""
        main = {tp.id for tp in self.timepoints}
        return [e for e in self.exposures if e.entity_id == entity_id and (e.before_story or e.timepoint_id in main)]

    def last_dialog(self, entity_id: str, as_of: TimepointRecord) -> DialogRecord | None:
        """The latest conversation the entity took part in before `as_of`, along its causal ancestry."""
        parent = self.parent(as_of)
        for tp in reversed(self.chain(parent) if parent else []):
            dialog = self.dialogs.get(tp.id)
            if dialog and entity_id in dialog.participants:
                return dialog
        return None

    def atmosphere(self, as_of: TimepointRecord) -> Room:
        """The room of `as_of` as people came into it: M10's record of it when there is one (M10 measures
        as the timepoint begins, before anyone speaks, once the body and the hour have had their say),
        else the same measure computed here from the states and trust as of `as_of`."""
        recorded = as_of.metadata.get("atmosphere")
        location = self.run.location or ""
        if recorded:
            return Room(Atmosphere(**{**recorded, "location": location}), recorded=True)
        present = [e for e in as_of.present if e in self.entities]
        states = [s.cognitive for s in (self.state(e, as_of) for e in present) if s]
        trusts = []
        for a, b in combinations(present, 2):
            rel = self.relationship(a, b, as_of)
            trusts.append(rel.trust if rel else DEFAULT_TRUST)
        return Room(atmosphere(states, trusts, location), recorded=False)

    def clock(self, tp: TimepointRecord) -> Clock:
        """M14 at `tp`'s hour (what M14 charges for it is recorded in the metadata when M14 ran)."""
        recorded = tp.metadata.get("circadian") or {}
        hour = recorded.get("hour", tp.time.hour + tp.time.minute / 60)
        awake = circadian.hours_awake(hour)
        night = circadian.is_night(hour)
        return Clock(hour=round(hour, 2), hours_awake=round(awake, 2), fatigue=round(circadian.fatigue(awake), 4),
                     night=night, night_penalty=circadian.NIGHT_PENALTY if night else 1.0,
                     energy_cost=recorded.get("energy_cost"), work=recorded.get("work"),
                     rest_hours=recorded.get("rest_hours") or {})

    def position(self, tp: TimepointRecord) -> Position:
        """What the run's mode means at `tp` (see `Position`)."""
        timeline = self.timelines.get(tp.timeline_id)
        mode = (timeline.mode if timeline and timeline.mode else self.run.mode) or "forward"
        path = self.timeline(tp.timeline_id)
        count = (path[-1].index + 1) if path else tp.index + 1
        meta, details = tp.metadata, {}
        if mode == "portal":
            steps = count - 1
            back = steps - tp.index
            spread = (timeline.metadata.get("divergence") or {}) if timeline else {}
            ratios = spread.get("ratios") or []
            details = {"steps_back": back, "steps": steps, "endpoint": path[-1].id if path else tp.id,
                       "pivot": back in ((timeline.metadata.get("pivots") or []) if timeline else []),
                       "divergence": ratios[back] if back < len(ratios) else None,
                       "plausibility": tp.importance}
        elif mode == "branching":
            details = {"branch": tp.timeline_id, "branch_name": timeline.metadata.get("name") if timeline else None,
                       "parent_timeline": timeline.parent_id if timeline else None,
                       "branch_point": timeline.branch_point if timeline else None,
                       "state": meta.get("branch"), "outcome": meta.get("outcome"),
                       "interventions": meta.get("interventions", []),
                       "forks_here": [t.id for t in self.timelines.values() if t.branch_point == tp.id]}
        elif mode == "cyclical":
            shape = timeline.metadata if timeline else {}
            details = {k: meta.get(k) for k in ("cycle", "phase", "position", "escalation", "boundary")}
            details.update(cycles=shape.get("loops"), cycle_length=shape.get("cycle_length"),
                           prophecy_spoken=(meta.get("prophecy") or {}).get("text"))
        elif mode == "directorial":
            details = {k: meta.get(k) for k in ("act", "tension_target", "tension", "pov", "framing",
                                                 "dramatic_irony")}
        return Position(mode=mode, timeline_id=tp.timeline_id, index=tp.index, count=count, details=details)


@contextmanager
def opened(run_dir: Path) -> Iterator[RunHistory]:
    """A finished run's history, its store checked first (a wrong path is a UserError, never a new
    empty store) and closed when done."""
    store = open_run(run_dir)
    try:
        yield RunHistory(store)
    finally:
        store.close()
