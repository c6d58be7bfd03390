"""The four companion datasets of a run (reference §7.1 "other formatters"), built from what the run
really did — its states, dialogs and exposures: entity evolution, dialog synthesis, knowledge flow
and relationship dynamics. Each record is {prompt, completion (a JSON string), metadata}, like the
training JSONL, and everything is read from the run store.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..store import RunStore
from .lines import write_jsonl
from .training import causal_history, entity_state, rounded
from .view import RunView

REL_FIELDS = ("trust", "alignment", "interactions")


def _record(v: RunView, sections: list[str], completion: dict, **ids) -> dict:
    run = v.run
    return {
        "prompt": "\n\n".join(sections),
        "completion": json.dumps(completion, ensure_ascii=False),
        "metadata": {**ids, "run_id": run["run_id"], "temporal_mode": run["mode"], "template": run["template"],
                     "model": run["model"], "seed": run["seed"], "training_safe": bool(run["training_safe"])},
    }


def _event(tp: dict) -> str:
    present = ", ".join(tp["entities_present"])
    return f"=== EVENT OCCURRING NOW ===\n{tp['timestamp']}: {tp['event']}\nPresent: {present}"


def _cognitive(state: dict) -> dict:
    return {k: rounded(x) for k, x in json.loads(state["cognitive"]).items()}


# -- entity evolution -------------------------------------------------------------------------

def _evolution(v: RunView, entity_id: str, t0: dict, t1: dict) -> dict:
    """Every entity is snapshotted at every timepoint, so absent ones evolve too (fatigue, recovery)."""
    ent = v.entities[entity_id]
    before, after = v.states[(entity_id, t0["timepoint_id"])], v.states[(entity_id, t1["timepoint_id"])]
    cog0, cog1 = _cognitive(before), _cognitive(after)
    sections = [
        "Predict this entity's state after the event below.",
        causal_history(v, t0),
        f"=== ENTITY (T0) ===\n{ent['name']} ({entity_id}), {ent['entity_type']}, {ent['title']}\n"
        f"Traits: {', '.join(json.loads(ent['traits']))}\nCognitive: {json.dumps(cog0)}\n"
        f"Knowledge items: {before['knowledge_count']}",
        entity_state(entity_id, json.loads(before["tensor"])),
        _event(t1),
    ]
    completion = {"tensor": json.loads(after["tensor"]), "cognitive": cog1, "knowledge_count": after["knowledge_count"],
                  "cognitive_change": {k: rounded(cog1[k] - cog0[k]) for k in cog1}}
    return _record(v, sections, completion, entity_id=entity_id, from_timepoint_id=t0["timepoint_id"],
                   timepoint_id=t1["timepoint_id"], present=entity_id in t1["entities_present"])


def entity_evolution(v: RunView) -> list[dict]:
    return [_evolution(v, eid, t0, t1) for t0, t1 in zip(v.timepoints, v.timepoints[1:]) for eid in v.entities
            if (eid, t0["timepoint_id"]) in v.states and (eid, t1["timepoint_id"]) in v.states]


# -- dialog synthesis -------------------------------------------------------------------------

def _participant(v: RunView, entity_id: str, tp: dict) -> str:
    """The state they came in with — the antecedent timepoint's snapshot, so the prompt does not
    leak the dialog's own effect; at the first timepoint there is none earlier, so its own is used."""
    ent = v.entities[entity_id]
    state = v.states.get((entity_id, tp["causal_parent"])) or v.states[(entity_id, tp["timepoint_id"])]
    cog = json.loads(state["cognitive"])
    return (f"- {ent['name']} ({entity_id}), {ent['title']}; traits: {', '.join(json.loads(ent['traits']))}; "
            f"energy {cog['energy']:.0f}, valence {cog['valence']:.2f}, arousal {cog['arousal']:.2f}; "
            f"knows {state['knowledge_count']} items")


def _synthesis(v: RunView, tp: dict, dialog: dict) -> dict:
    participants = json.loads(dialog["participants"])
    turns = v.turns.get(dialog["dialog_id"], [])
    sections = [
        "Write the conversation these people have at the moment below.",
        causal_history(v, tp),
        "=== PARTICIPANTS ===\n" + "\n".join(_participant(v, p, tp) for p in participants),
        _event(tp),
    ]
    keys = ("speaker", "content", "emotional_tone", "dialog_move")
    completion = {"transcript": [{k: t[k] for k in keys} for t in turns]}
    return _record(v, sections, completion, dialog_id=dialog["dialog_id"], timepoint_id=tp["timepoint_id"],
                   participants=participants)


def dialog_synthesis(v: RunView) -> list[dict]:
    return [_synthesis(v, tp, v.dialogs[tp["timepoint_id"]]) for tp in v.timepoints if tp["timepoint_id"] in v.dialogs]


# -- knowledge flow ---------------------------------------------------------------------------

def _flow(v: RunView, ev: dict) -> dict:
    learner = v.entities[ev["entity_id"]]
    sections = [
        f"How did {learner['name']} ({ev['entity_id']}) come to know this, and how sure are they?\n"
        f"\"{ev['information']}\"",
        _event(v.by_tp[ev["timepoint_id"]]),
    ]
    completion = {"learner": ev["entity_id"], "information": ev["information"], "source": ev["source"],
                  "event_type": ev["event_type"], "timepoint_id": ev["timepoint_id"], "timestamp": ev["timestamp"],
                  "confidence": ev["confidence"]}
    return _record(v, sections, completion, entity_id=ev["entity_id"], source=ev["source"],
                   timepoint_id=ev["timepoint_id"], event_type=ev["event_type"])


def knowledge_flow(v: RunView) -> list[dict]:
    """Only exposures passed on by another entity: the edges knowledge travels along."""
    return [_flow(v, ev) for ev in v.exposures if ev["source"] in v.entities and ev["source"] != ev["entity_id"]]


# -- relationship dynamics --------------------------------------------------------------------

def _dynamics(v: RunView, row: dict, prev: dict | None) -> dict:
    a, b, tp = row["entity_a"], row["entity_b"], v.by_tp[row["timepoint_id"]]
    rel = v.relationships.get((a, b))
    before = ("no earlier state" if prev is None
              else ", ".join(f"{k} {rounded(prev[k])}" for k in REL_FIELDS) + f" (at {prev['timepoint_id']})")
    sections = [
        "Predict how this relationship stands after the event below.",
        f"=== RELATIONSHIP (M13) ===\n{v.entities[a]['name']} ({a}) and {v.entities[b]['name']} ({b}): "
        f"{rel['rel_type'] if rel else 'neutral'}\nBefore: {before}",
        _event(tp),
    ]
    completion = {**{k: row[k] for k in REL_FIELDS},
                  "change": None if prev is None else {k: rounded(row[k] - prev[k]) for k in REL_FIELDS}}
    return _record(v, sections, completion, entity_a=a, entity_b=b, timepoint_id=row["timepoint_id"],
                   previous_timepoint_id=None if prev is None else prev["timepoint_id"])


def relationship_dynamics(store: RunStore, v: RunView) -> list[dict]:
    """Pair states along the main timeline, each compared with the pair's previous one."""
    rows = sorted((r for r in store.rows("relationship_states") if r["timepoint_id"] in v.by_tp),
                  key=lambda r: (v.by_tp[r["timepoint_id"]]["idx"], r["entity_a"], r["entity_b"]))
    records, last = [], {}
    for row in rows:
        pair = (row["entity_a"], row["entity_b"])
        records.append(_dynamics(v, row, last.get(pair)))
        last[pair] = row
    return records


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    v = RunView(store)
    datasets = {
        "entity_evolution": entity_evolution(v),
        "dialog_synthesis": dialog_synthesis(v),
        "knowledge_flow": knowledge_flow(v),
        "relationship_dynamics": relationship_dynamics(store, v),
    }
    return [write_jsonl(out_dir / f"{name}.jsonl", records, compression) for name, records in datasets.items()]
