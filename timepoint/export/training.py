"""Training JSONL: one prompt/completion record per entity transition t_i → t_{i+1}.

The prompt carries the entity's real state before the event and the SNAG context sections;
the completion is what actually happened to the entity: knowledge gained, energy and emotion.
Everything is read from the run store, so any past run can be exported again.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path

from ..dialog.archetypes import archetype_of
from ..mechanisms.atmosphere import atmosphere
from ..store import RunStore
from ..world import CognitiveState, alignment
from .lines import write_jsonl
from .view import RunView

CONTEXT_MECHANISMS = ["M3", "M6", "M7", "M10", "M11", "M13", "M14"]


def rounded(x: float) -> float:
    return round(x, 4)


def causal_history(v: RunView, tp: dict) -> str:
    chain = v.ancestors(tp["timepoint_id"])
    lines = [f"  {t['timepoint_id']} ({t['timestamp']}): {t['event'][:200]}" for t in chain]
    header = f"=== CAUSAL HISTORY (M7) ===\nTimeline leading to current moment ({len(chain)} events):\n"
    return header + "\n".join(lines)


def _relationships(v: RunView, entity_id: str, others: list[str], upto_idx: int) -> str:
    mine = {e["information"] for e in v.known_by(entity_id, upto_idx)}
    lines = []
    for other in others[:5]:
        rel = v.relationships.get(tuple(sorted((entity_id, other))))
        trust = rel["trust"] if rel else 0.5
        align = alignment(mine, {e["information"] for e in v.known_by(other, upto_idx)})
        dynamic = "allied" if trust > 0.7 else "opposed" if trust < 0.3 else "neutral"
        kind = rel["rel_type"] if rel else "neutral"
        lines.append(f"  {other}: {dynamic} {kind} (trust: {trust:.2f}, alignment: {align:.2f})")
    return "=== RELATIONSHIP CONTEXT (M13) ===\nRelationships with entities present:\n" + "\n".join(lines)


def _provenance(known: list[dict]) -> str:
    sources = Counter(e["source"] for e in known).most_common(3)
    modes = Counter(e["event_type"] for e in known)
    total = sum(modes.values()) or 1
    recent = known[-5:]
    return ("=== KNOWLEDGE PROVENANCE (M3) ===\n"
            f"Primary sources: {', '.join(f'{s} ({n} items)' for s, n in sources)}\n"
            f"Learning modes: {', '.join(f'{m} ({100 * n // total}%)' for m, n in sorted(modes.items()))}\n"
            "Recent:\n" + "\n".join(f'  "{e["information"][:160]}" (from {e["source"]}, conf: {e["confidence"]:.1f})'
                                    for e in recent))


def _dialog_context(v: RunView, tp: dict) -> str | None:
    dialog = v.dialogs.get(tp["timepoint_id"])
    if not dialog:
        return None
    lines = [f"  {t['speaker']}: {t['content'][:200]}" for t in v.turns.get(dialog["dialog_id"], [])[-3:]]
    return (f"=== DIALOG CONTEXT (M11) ===\nLast conversation ({dialog['turn_count']} turns): {dialog['summary']}\n"
            + "\n".join(lines))


def _atmosphere(v: RunView, tp: dict) -> str:
    """The room as the people in it made it (M10's own measure, recomputed from the stored states
    when the run did not record it)."""
    present = tp["entities_present"]
    states = [CognitiveState.model_validate_json(v.states[(e, tp["timepoint_id"])]["cognitive"]) for e in present
              if (e, tp["timepoint_id"]) in v.states]
    trusts = [r["trust"] if r else 0.5 for r in (v.relationships.get(tuple(sorted((a, b))))
                                                  for i, a in enumerate(present) for b in present[i + 1:])]
    room = atmosphere(states, trusts, v.run["location"] or "")
    lines = [f"Location: {v.run['location'] or 'unspecified'}", f"Present: {len(present)}",
             f"Tension: {room.tension:.2f}, formality {room.formality:.2f}, cohesion {room.cohesion:.2f}"]
    if states:
        lines.append(f"Mood: {room.mood} (valence {room.valence:.2f}, arousal {room.arousal:.2f}, "
                     f"energy {100 * room.energy:.0f})")
    dialog = v.dialogs.get(tp["timepoint_id"])
    if dialog and dialog["mood"]:
        lines.append(f"Conversation mood: {dialog['mood']}")
    return "=== ATMOSPHERIC CONTEXT (M10) ===\n" + "\n".join(lines)


def _temporal_patterns(v: RunView, t0: dict, t1: dict) -> str:
    """When the event falls: time of day, the gap since the last one, and where it sits in the mode's shape."""
    start, end = datetime.fromisoformat(t0["timestamp"]), datetime.fromisoformat(t1["timestamp"])
    hour = end.hour
    phase = "night" if hour >= 22 or hour < 6 else "working hours" if 8 <= hour < 17 else "off hours"
    gap = end - start
    lines = [f"Time of day: {end:%H:%M} ({phase})", f"Since previous event: {_span(gap.total_seconds())}",
             f"Position: event {t1['idx'] + 1} of {len(v.timepoints)} ({v.run['mode']} mode)"]
    shape = json.loads(t1.get("metadata") or "{}")
    lines += [f"{key.replace('_', ' ').capitalize()}: {shape[key]}" for key in SHAPE_KEYS if key in shape]
    return "=== TEMPORAL PATTERNS (M14) ===\n" + "\n".join(lines)


SHAPE_KEYS = ("act", "tension_target", "cycle", "phase", "escalation", "outcome")


def _span(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} seconds"


def entity_state(entity_id: str, tensor: dict) -> str:
    def vec(xs: list[float]) -> str:
        return "[" + ", ".join(f"{x:.2f}" for x in xs) + "]"
    return (f"=== ENTITY STATE (M6) ===\n{entity_id} tensor:\n  context {vec(tensor['context'])}\n"
            f"  biology {vec(tensor['biology'])}\n  behavior {vec(tensor['behavior'])}")


def _record(v: RunView, entity_id: str, t0: dict, t1: dict) -> dict:
    ent = v.entities[entity_id]
    before, after = v.states[(entity_id, t0["timepoint_id"])], v.states[(entity_id, t1["timepoint_id"])]
    cog0, cog1 = json.loads(before["cognitive"]), json.loads(after["cognitive"])
    known = v.known_by(entity_id, t0["idx"])
    gained = [e for e in v.known_by(entity_id, t1["idx"]) if v.by_tp.get(e["timepoint_id"], {}).get("idx") == t1["idx"]]
    others = [p for p in t1["entities_present"] if p != entity_id]
    traits = json.loads(ent["traits"])
    sections = [
        "Predict how this entity's state changes through the event below.",
        causal_history(v, t0),
        _relationships(v, entity_id, others, t0["idx"]),
        _provenance(known),
        _atmosphere(v, t0),
        _dialog_context(v, t0),
        entity_state(entity_id, json.loads(before["tensor"])),
        _temporal_patterns(v, t0, t1),
        "=== ENTITY BEFORE EVENT (T0) ===\n"
        f"Entity: {entity_id} ({ent['entity_type']}, {ent['title']})\n"
        f"Knowledge ({len(known)} items): {json.dumps([e['information'][:120] for e in known[-5:]])}\n"
        f"Energy: {cog0['energy']:.1f}\nValence: {cog0['valence']:.2f}\nArousal: {cog0['arousal']:.2f}\n"
        f"Personality: {', '.join(traits)}",
        f"=== EVENT OCCURRING NOW ===\n{t1['timestamp']}: {t1['event']}\n"
        f"Others present: {', '.join(others) or 'none'}\nImportance: {t1['importance']:.2f}",
        "=== PREDICTION TASK ===\nPredict: new knowledge, energy change, emotional impact, causal reasoning.",
    ]
    completion = {
        "new_knowledge_gained": [e["information"] for e in gained],
        "knowledge_count": after["knowledge_count"],
        "energy_change": rounded(cog1["energy"] - cog0["energy"]),
        "remaining_energy": rounded(cog1["energy"]),
        "emotional_change": {
            "valence_delta": rounded(cog1["valence"] - cog0["valence"]),
            "arousal_delta": rounded(cog1["arousal"] - cog0["arousal"]),
            "final_valence": rounded(cog1["valence"]),
            "final_arousal": rounded(cog1["arousal"]),
        },
        "causal_reasoning": t1["causal_link"],
        "knowledge_sources": dict(sorted(Counter(e["source"] for e in gained).items())),
        "metadata": {
            "entity_id": entity_id, "entity_type": ent["entity_type"],
            "timepoint_transition": f"{t0['timepoint_id']} -> {t1['timepoint_id']}",
            "co_present_entities": others, "event_causal_parent": t1["causal_parent"],
        },
    }
    run = v.run
    prompt = "\n\n".join(s for s in sections if s)
    return {
        "prompt": prompt,
        "completion": json.dumps(completion, ensure_ascii=False),
        "metadata": {
            "entity_id": entity_id, "timepoint_id": t1["timepoint_id"], "run_id": run["run_id"],
            "mechanisms": [m for m in CONTEXT_MECHANISMS if f"({m})" in prompt],
            "temporal_mode": run["mode"], "template": run["template"], "model": run["model"],
            "seed": run["seed"], "training_safe": bool(run["training_safe"]),
            "archetype": archetype_of(ent["title"] or "", ent["description"] or ""),
            "speaker": entity_id in _speakers(v, t1),
        },
    }


def _speakers(v: RunView, tp: dict) -> set[str]:
    dialog = v.dialogs.get(tp["timepoint_id"])
    return {t["speaker"] for t in v.turns.get(dialog["dialog_id"], [])} if dialog else set()


def training_records(store: RunStore) -> list[dict]:
    v = RunView(store)
    records = []
    for t0, t1 in zip(v.timepoints, v.timepoints[1:]):
        for entity_id in t1["entities_present"]:
            if entity_id in t0["entities_present"] and (entity_id, t1["timepoint_id"]) in v.states:
                records.append(_record(v, entity_id, t0, t1))
    return records


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    return [write_jsonl(out_dir / "training.jsonl", training_records(store), compression)]
