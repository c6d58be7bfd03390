"""The four companion datasets of a run (reference §7.1 "other formatters"), built from what the run
really did — its states, dialogs and exposures: entity evolution, dialog synthesis, knowledge flow
and relationship dynamics. Each record is {prompt, completion (a JSON string), metadata}, like the
training JSONL; prompts hold what was so going in (as of the moment, see history.py), completions
what followed. Everything is read through the read side.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..history import DialogRecord, KnownItem, RelationshipState, RunHistory, TimepointRecord
from ..store import RunStore
from ..world import CognitiveState
from .lines import write_jsonl
from .training import causal_history, entity_state, prompt_of, rounded

REL_FIELDS = ("trust", "alignment", "interactions")


def _record(h: RunHistory, parts: list, completion: dict, **ids) -> dict:
    run = h.run
    prompt, _ = prompt_of(parts)
    return {
        "prompt": prompt,
        "completion": json.dumps(completion, ensure_ascii=False),
        "metadata": {**ids, "run_id": run.id, "temporal_mode": run.mode, "template": run.template,
                     "model": run.model, "seed": run.seed, "training_safe": run.training_safe},
    }


def _event(tp: TimepointRecord) -> str:
    return f"=== EVENT OCCURRING NOW ===\n{tp.timestamp}: {tp.event}\nPresent: {', '.join(tp.present)}"


def _cognitive(cog: CognitiveState) -> dict:
    return {k: rounded(x) for k, x in cog.model_dump().items()}


# -- entity evolution -------------------------------------------------------------------------

def _evolution(h: RunHistory, entity_id: str, t0: TimepointRecord, t1: TimepointRecord) -> dict:
    """Every entity is snapshotted at every timepoint, so absent ones evolve too (fatigue, recovery)."""
    ent = h.entities[entity_id]
    before, after = h.state(entity_id, t1), h.state_at(entity_id, t1)
    cog0, cog1 = _cognitive(before.cognitive), _cognitive(after.cognitive)
    parts = [
        "Predict this entity's state after the event below.",
        causal_history(h, t0),
        f"=== ENTITY (T0) ===\n{ent.name} ({entity_id}), {ent.type}, {ent.title}\n"
        f"Traits: {', '.join(ent.traits)}\nCognitive: {json.dumps(cog0)}\n"
        f"Knowledge items: {before.knowledge_count}",
        entity_state(entity_id, before.tensor) if h.run.has("M6") else None,
        _event(t1),
    ]
    completion = {"tensor": after.tensor.model_dump(), "cognitive": cog1, "knowledge_count": after.knowledge_count,
                  "cognitive_change": {k: rounded(cog1[k] - cog0[k]) for k in cog1}}
    return _record(h, parts, completion, entity_id=entity_id, from_timepoint_id=t0.id,
                   timepoint_id=t1.id, present=entity_id in t1.present)


def entity_evolution(h: RunHistory) -> list[dict]:
    return [_evolution(h, eid, t0, t1) for t0, t1 in zip(h.timepoints, h.timepoints[1:]) for eid in h.entities
            if h.state(eid, t1) and h.state_at(eid, t1)]


# -- dialog synthesis -------------------------------------------------------------------------

def _participant(h: RunHistory, entity_id: str, tp: TimepointRecord) -> str:
    """The state they came in with (as of the dialog's timepoint), so the prompt does not leak the
    dialog's own effect; a store without an opening snapshot falls back to the timepoint's own."""
    ent = h.entities[entity_id]
    state = h.state(entity_id, tp) or h.state_at(entity_id, tp)
    cog = state.cognitive
    return (f"- {ent.name} ({entity_id}), {ent.title}; traits: {', '.join(ent.traits)}; "
            f"energy {cog.energy:.0f}, valence {cog.valence:.2f}, arousal {cog.arousal:.2f}; "
            f"knows {state.knowledge_count} items")


def _synthesis(h: RunHistory, tp: TimepointRecord, dialog: DialogRecord) -> dict:
    parts = [
        "Write the conversation these people have at the moment below.",
        causal_history(h, tp),
        "=== PARTICIPANTS ===\n" + "\n".join(_participant(h, p, tp) for p in dialog.participants if p in h.entities),
        _event(tp),
    ]
    completion = {"transcript": [{"speaker": t.speaker, "content": t.content, "emotional_tone": t.emotional_tone,
                                  "dialog_move": t.move} for t in dialog.turns]}
    return _record(h, parts, completion, dialog_id=dialog.id, timepoint_id=tp.id, participants=dialog.participants)


def dialog_synthesis(h: RunHistory) -> list[dict]:
    return [_synthesis(h, tp, h.dialogs[tp.id]) for tp in h.timepoints if tp.id in h.dialogs]


# -- knowledge flow ---------------------------------------------------------------------------

def _flow(h: RunHistory, ev: KnownItem) -> dict:
    learner = h.entities[ev.entity_id]
    parts = [
        f"How did {learner.name} ({ev.entity_id}) come to know this, and how sure are they?\n\"{ev.information}\"",
        _event(h.timepoint(ev.timepoint_id)),
    ]
    completion = {"learner": ev.entity_id, "information": ev.information, "source": ev.source,
                  "event_type": ev.event_type, "timepoint_id": ev.timepoint_id, "timestamp": ev.timestamp,
                  "confidence": ev.confidence}
    return _record(h, parts, completion, entity_id=ev.entity_id, source=ev.source, timepoint_id=ev.timepoint_id,
                   event_type=ev.event_type)


def knowledge_flow(h: RunHistory) -> list[dict]:
    """Only exposures passed on by another entity: the edges knowledge travels along."""
    return [_flow(h, ev) for ev in h.exposures
            if ev.source in h.entities and ev.source != ev.entity_id and ev.entity_id in h.entities
            and h.timepoint(ev.timepoint_id)]


# -- relationship dynamics --------------------------------------------------------------------

def _dynamics(h: RunHistory, now: RelationshipState, prev: RelationshipState | None) -> dict:
    a, b, tp = now.a, now.b, h.timepoint(now.timepoint_id)
    before = ("no earlier state" if prev is None
              else ", ".join(f"{k} {rounded(getattr(prev, k))}" for k in REL_FIELDS) + f" (at {prev.timepoint_id})")
    parts = [
        "Predict how this relationship stands after the event below.",
        f"=== RELATIONSHIP (M13) ===\n{h.name(a)} ({a}) and {h.name(b)} ({b}): {now.type}\nBefore: {before}",
        _event(tp),
    ]
    completion = {**{k: getattr(now, k) for k in REL_FIELDS},
                  "change": None if prev is None else {k: rounded(getattr(now, k) - getattr(prev, k))
                                                       for k in REL_FIELDS}}
    return _record(h, parts, completion, entity_a=a, entity_b=b, timepoint_id=now.timepoint_id,
                   previous_timepoint_id=None if prev is None else prev.timepoint_id)


def relationship_dynamics(h: RunHistory) -> list[dict]:
    """Each pair's state at every timepoint of the main timeline beside its state going in (the
    previous timepoint's, or the opening snapshot's at the first)."""
    records = []
    for tp in h.timepoints:
        for (a, b, at), now in sorted(h.relationship_states.items()):
            if at == tp.id:
                records.append(_dynamics(h, now, h.relationship(a, b, tp)))
    return records


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    h = RunHistory(store)
    datasets = {
        "entity_evolution": entity_evolution(h),
        "dialog_synthesis": dialog_synthesis(h),
        "knowledge_flow": knowledge_flow(h),
        "relationship_dynamics": relationship_dynamics(h),
    }
    return [write_jsonl(out_dir / f"{name}.jsonl", records, compression) for name, records in datasets.items()]
