"""Training JSONL: one prompt/completion record per entity transition T0 → T1 on the main timeline.

The prompt holds only what the entity had going into the event at T1 — its state, trust, knowledge and
arc as of T1, which is to say at the end of T0 (history.py defines "as of") — with the context sections
of the mechanisms the run enabled; the completion is what really followed: the entity at the end of T1.
`metadata.mechanisms` lists the mechanisms whose sections the prompt holds. Everything is read through
the read side, so any past run can be exported again.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..history import EntityState, KnownItem, Position, RunHistory, TimepointRecord
from ..store import RunStore
from ..world import PhysicalState, TTMTensor
from .lines import write_jsonl

RELATIONSHIPS_SHOWN = 5
KNOWLEDGE_SHOWN = 5
ATTEMPTS_SHOWN = 6
UNSPOKEN_SHOWN = 3

EVENT_HEADER = "=== EVENT OCCURRING NOW ==="
OWN_SECTIONS = ("RELATIONSHIP CONTEXT", "CHARACTER ARC", "ENTITY BEFORE EVENT", "EVENT OCCURRING NOW")


def rounded(x: float) -> float:
    return round(x, 4)


def mechanism_order(m: str) -> tuple[int, str]:
    return (int(m[1:]) if m[1:].isdigit() else 10 ** 6, m)


@dataclass(frozen=True)
class Section:
    """One `=== TITLE (M…) ===` block of a prompt and the mechanisms it comes from."""

    title: str
    body: str
    mechanisms: tuple[str, ...] = ()

    def __str__(self) -> str:
        tag = f" ({', '.join(self.mechanisms)})" if self.mechanisms else ""
        return f"=== {self.title}{tag} ===\n{self.body}"


def prompt_of(parts: list[str | Section | None]) -> tuple[str, list[str]]:
    """The prompt text, and the mechanisms of the sections it holds (M-number order)."""
    present = [p for p in parts if p]
    mechanisms = {m for p in present if isinstance(p, Section) for m in p.mechanisms}
    return "\n\n".join(str(p) for p in present), sorted(mechanisms, key=mechanism_order)


# -- sections other exporters share -------------------------------------------------------------

def causal_history(h: RunHistory, tp: TimepointRecord) -> Section | None:
    """M7: the chain of events that led to `tp` (it included), oldest first."""
    if not h.run.has("M7"):
        return None
    chain = h.chain(tp, limit=5)
    lines = [f"  {t.id} ({t.timestamp}): {t.event[:200]}" for t in chain]
    return Section("CAUSAL HISTORY", f"Timeline leading to current moment ({len(chain)} events):\n"
                   + "\n".join(lines), ("M7",))


def entity_state(entity_id: str, tensor: TTMTensor) -> Section:
    def vec(xs: list[float]) -> str:
        return "[" + ", ".join(f"{x:.2f}" for x in xs) + "]"
    return Section("ENTITY STATE", f"{entity_id} tensor:\n  context {vec(tensor.context)}\n"
                   f"  biology {vec(tensor.biology)}\n  behavior {vec(tensor.behavior)}", ("M6",))


def knowledge_line(h: RunHistory, e: KnownItem, chars: int = 160) -> str:
    """One item with its provenance: how, from whom, when (timepoint and time), how sure."""
    return (f'"{e.information[:chars]}" ({e.event_type}, from {h.name(e.source)}, {e.when}, '
            f"confidence {e.confidence:.2f})")


def position_lines(h: RunHistory, pos: Position) -> list[str]:
    """What the mode means at a timepoint, in words."""
    d = pos.details
    if pos.mode == "portal":
        lines = [f"PORTAL: the story is worked backward from a known endpoint ({d['endpoint']}).",
                 f"This event is step {d['steps_back']} of {d['steps']} back from the endpoint"
                 + (" (the endpoint itself)." if d["steps_back"] == 0 else "."),
                 f"Plausibility of this state: {d['plausibility']:.2f}" + (" — a pivot of the path." if d["pivot"]
                                                                          else ".")]
        if d.get("divergence") is not None:
            lines.append(f"How far the candidate paths disagree here: {d['divergence']:.2f}")
        return lines
    if pos.mode == "branching":
        name = d.get("branch_name") or pos.timeline_id
        lines = [f"BRANCHING: this is branch {pos.timeline_id} ({name}), step {pos.index} of {pos.count - 1}."]
        if d.get("branch_point"):
            lines.append(f"It branched from {d['parent_timeline']} at {d['branch_point']}.")
        else:
            lines.append("It runs from the opening; other branches fork from it.")
        if d.get("outcome"):
            lines.append(f"Kind of future at this step: {d['outcome']}.")
        counterfactual = d.get("interventions") or []
        lines.append("Counterfactual in force: " + ("; ".join(counterfactual) if counterfactual else "none."))
        return lines
    if pos.mode == "cyclical":
        cycle = d.get("cycle")
        lines = [f"CYCLICAL: cycle {cycle + 1 if isinstance(cycle, int) else '?'}"
                 + (f" of {d['cycles']}" if d.get("cycles") else "")
                 + f", phase {d.get('phase')!r} (position {d.get('position')}), escalation {d.get('escalation')}."]
        if d.get("prophecy_spoken"):
            lines.append(f"A prophecy is spoken here: {d['prophecy_spoken']}")
        return lines
    if pos.mode == "directorial":
        return [f"DIRECTORIAL: act {d.get('act')}, tension target {d.get('tension_target')}"
                f" (reached {d.get('tension')}), seen through {h.name(d['pov']) if d.get('pov') else '?'}'s eyes"
                + (f", framed as {d['framing']}" if d.get("framing") else "") + ".",
                *([f"Dramatic irony: {d['dramatic_irony']}"] if d.get("dramatic_irony") else [])]
    return [f"{pos.mode.upper()}: time runs on from the opening; event {pos.index + 1} of {pos.count}."]


# -- the training record's sections -------------------------------------------------------------

def _mode(h: RunHistory, entity_id: str, t1: TimepointRecord) -> Section:
    lines = position_lines(h, h.position(t1))
    heard = [e for e in h.known(entity_id, t1) if e.event_type == "expectation"]
    if heard:
        lines.append("Prophecies heard so far:\n" + "\n".join(f"  {knowledge_line(h, e)}" for e in heard[-3:]))
    return Section("MODE", "\n".join(lines), ("M17",))


def _relationships(h: RunHistory, entity_id: str, others: list[str], t1: TimepointRecord) -> Section | None:
    """Trust and alignment as of T1: the pair's relationship_states row at the end of T0."""
    if not h.run.has("M13"):
        return None
    lines = []
    for other in others[:RELATIONSHIPS_SHOWN]:
        kind = h.relationship_type(entity_id, other)
        rel = h.relationship(entity_id, other, t1)
        if rel is None:
            lines.append(f"  {other}: declared {kind} (no state recorded before this moment)")
            continue
        dynamic = "allied" if rel.trust > 0.7 else "opposed" if rel.trust < 0.3 else "neutral"
        lines.append(f"  {other}: {dynamic}, declared {kind} (trust: {rel.trust:.2f}, alignment: {rel.alignment:.2f}, "
                     f"{rel.interactions} interactions so far)")
    body = "Relationships with entities present, as they stood going in:\n" + ("\n".join(lines) or "  none")
    return Section("RELATIONSHIP CONTEXT", body, ("M13",))


def _provenance(h: RunHistory, known: list[KnownItem]) -> Section | None:
    if not h.run.has("M3"):
        return None
    if not known:
        return Section("KNOWLEDGE PROVENANCE", "Nothing known yet.", ("M3",))
    sources = Counter(h.name(e.source) for e in known).most_common(3)
    modes = Counter(e.event_type for e in known)
    total = sum(modes.values())
    recent = known[-KNOWLEDGE_SHOWN:]
    return Section("KNOWLEDGE PROVENANCE",
                   f"Primary sources: {', '.join(f'{s} ({n} items)' for s, n in sources)}\n"
                   f"Learning modes: {', '.join(f'{m} ({100 * n // total}%)' for m, n in sorted(modes.items()))}\n"
                   f"Most recent ({len(recent)} of {len(known)}):\n"
                   + "\n".join(f"  {knowledge_line(h, e)}" for e in recent), ("M3",))


def _atmosphere(h: RunHistory, t1: TimepointRecord) -> Section | None:
    """The room at T1 as people come in: M10's record, or its measure over the states as of T1."""
    if not h.run.has("M10"):
        return None
    room = h.atmosphere(t1)
    a = room.atmosphere
    lines = [f"Location: {h.run.location or 'unspecified'}",
             f"Present: {len(t1.present)} ({', '.join(h.name(e) for e in t1.present)})",
             f"Tension: {a.tension:.2f}, formality {a.formality:.2f}, cohesion {a.cohesion:.2f}, "
             f"density {a.density:.2f}, noise {a.noise:.2f}",
             f"Mood: {a.mood} (valence {a.valence:.2f}, arousal {a.arousal:.2f}, energy {100 * a.energy:.0f})",
             "Measured as the event began." if room.recorded else "Computed from the states going in."]
    return Section("ATMOSPHERIC CONTEXT", "\n".join(lines), ("M10",))


def _dialog_context(h: RunHistory, entity_id: str, t1: TimepointRecord) -> Section | None:
    dialog = h.last_dialog(entity_id, t1)
    if not dialog:
        return None
    lines = [f"  {t.speaker}: {t.content[:200]}" for t in dialog.turns[-3:]]
    mood = f", mood {dialog.mood}" if dialog.mood else ""
    return Section("DIALOG CONTEXT", f"Last conversation you took part in (at {dialog.timepoint_id}, "
                   f"{dialog.turn_count} turns{mood}): {dialog.summary}\n" + "\n".join(lines), ("M11",))


def _arc(h: RunHistory, entity_id: str, t1: TimepointRecord) -> Section | None:
    """The character arc from the mind snapshot as of T1: tactics and how they landed, trust moves,
    what is still unspoken, what the entity broods on."""
    mind = h.mind(entity_id, t1)
    if mind is None:
        return None
    tags, lines = [], []
    if h.run.has("M13"):
        tags.append("M13")
        if mind.attempts:
            lines.append(f"Tactics tried ({len(mind.attempts)}), latest last:")
            lines += [f"  {a.timepoint_id}: {a.tactic} on {a.target} -> {a.outcome}"
                      + (f" ({a.reason[:80]})" if getattr(a, "reason", "") else "")
                      for a in mind.attempts[-ATTEMPTS_SHOWN:]]
            landed = Counter(a.outcome for a in mind.attempts).most_common()
            lines.append("How they landed: " + ", ".join(f"{o} {n}" for o, n in landed))
        else:
            lines.append("Tactics tried: none yet.")
        moves = sorted(mind.trust_ledger.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
        lines.append("Trust moves so far: " + (", ".join(f"{h.name(k)} {v:+.2f}" for k, v in moves) or "none"))
    unspoken = sorted(mind.unspoken, key=lambda u: -u.urgency)[:UNSPOKEN_SHOWN]
    lines.append("Still unspoken:" + ("".join(f'\n  "{u.content[:160]}" (urgency {u.urgency:.2f}, since '
                                               f"{u.first_formed})" for u in unspoken) if unspoken else " nothing."))
    if mind.suppressed:
        lines.append("Held back: " + "; ".join(mind.suppressed[-3:]))
    if h.run.has("M15"):
        tags.append("M15")
        topics = sorted(mind.rumination, key=lambda t: -t.intensity)[:3]
        lines.append("Preoccupied with: " + ("; ".join(f"{t.topic[:100]} ({t.intensity:.2f})" for t in topics)
                                             or "nothing in particular"))
    return Section("CHARACTER ARC", "\n".join(lines), tuple(tags))


def body_declared(physical: PhysicalState, entity_type: str) -> bool:
    """A body worth a section: the template gave it pain, fever, ill health or low stamina."""
    usual_fever = 36.5 if entity_type == "human" else 0.0
    return (physical.pain > 0 or physical.health < 1 or physical.stamina < 1
            or abs(physical.fever - usual_fever) > 1e-9)


def _body(h: RunHistory, entity_id: str, state: EntityState, t1: TimepointRecord) -> Section | None:
    """M8: the body as of T1, when the entity has one to speak of."""
    p = state.physical
    if not h.run.has("M8") or not body_declared(p, h.entities[entity_id].type):
        return None
    applied = t1.metadata.get("embodied")
    weighs = bool(applied.get(entity_id)) if isinstance(applied, dict) else entity_id in (applied or [])
    lines = [f"Pain: {p.pain:.2f}", f"Fever: {p.fever:.1f} °C", f"Health: {p.health:.2f}",
             f"Stamina: {p.stamina:.2f}", f"Mobility: {p.mobility:.2f}", f"Age: {p.age:.0f}",
             "The body weighs on the mind at this event." if weighs else "The body does not weigh on the mind now."]
    return Section("BODY", "\n".join(lines), ("M8",))


def _span(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} seconds"


def _circadian(h: RunHistory, entity_id: str, t0: TimepointRecord, t1: TimepointRecord) -> Section | None:
    """M14 at the event's hour: the clock, how long since waking, fatigue and the night penalty."""
    if not h.run.has("M14"):
        return None
    c = h.clock(t1)
    hour = t1.time.hour
    phase = "night" if c.night else "working hours" if 8 <= hour < 17 else "off hours"
    lines = [f"Time of day: {t1.time:%H:%M} ({phase})",
             f"Since previous event: {_span((t1.time - t0.time).total_seconds())}",
             f"Hours awake: {c.hours_awake:.1f} (waking at 06:00)",
             f"Fatigue: x{c.fatigue:.2f}",
             f"Night penalty: x{c.night_penalty:.1f}"]
    if entity_id in c.rest_hours:
        lines.append(f"Rest since your last scene: {c.rest_hours[entity_id]:.1f} hours of sleep")
    if c.energy_cost is not None:
        lines.append(f"Energy this hour costs: {c.energy_cost:.1f}")
    if c.work:
        lines.append(f"Work at this hour: {c.work}")
    return Section("CIRCADIAN", "\n".join(lines), ("M14",))


def _before(h: RunHistory, entity_id: str, state: EntityState, known: list[KnownItem], t0: TimepointRecord) -> str:
    ent = h.entities[entity_id]
    cog = state.cognitive
    return ("=== ENTITY BEFORE EVENT (T0) ===\n"
            f"As of the end of {t0.id}\n"
            f"Entity: {entity_id} ({ent.type}, {ent.title})\n"
            f"Knowledge ({state.knowledge_count} items): {json.dumps([e.information[:120] for e in known[-5:]])}\n"
            f"Energy: {cog.energy:.1f}\nValence: {cog.valence:.2f}\nArousal: {cog.arousal:.2f}\n"
            f"Personality: {', '.join(ent.traits)}")


def _record(h: RunHistory, entity_id: str, t0: TimepointRecord, t1: TimepointRecord) -> dict:
    ent = h.entities[entity_id]
    before, after = h.state(entity_id, t1), h.state_at(entity_id, t1)
    cog0, cog1 = before.cognitive, after.cognitive
    known = h.known(entity_id, t1)
    gained = h.gained(entity_id, t1)
    others = [p for p in t1.present if p != entity_id]
    prompt, mechanisms = prompt_of([
        "Predict how this entity's state changes through the event below.",
        causal_history(h, t0),
        _mode(h, entity_id, t1),
        _relationships(h, entity_id, others, t1),
        _provenance(h, known),
        _atmosphere(h, t1),
        _dialog_context(h, entity_id, t1),
        _arc(h, entity_id, t1),
        _body(h, entity_id, before, t1),
        _circadian(h, entity_id, t0, t1),
        entity_state(entity_id, before.tensor) if h.run.has("M6") else None,
        _before(h, entity_id, before, known, t0),
        f"{EVENT_HEADER}\n{t1.timestamp}: {t1.event}\n"
        f"Others present: {', '.join(others) or 'none'}\nImportance: {t1.importance:.2f}",
        "=== PREDICTION TASK ===\nPredict: new knowledge, energy change, emotional impact, causal reasoning.",
    ])
    completion = {
        "new_knowledge_gained": [e.information for e in gained],
        "knowledge_count": after.knowledge_count,
        "energy_change": rounded(cog1.energy - cog0.energy),
        "remaining_energy": rounded(cog1.energy),
        "emotional_change": {
            "valence_delta": rounded(cog1.valence - cog0.valence),
            "arousal_delta": rounded(cog1.arousal - cog0.arousal),
            "final_valence": rounded(cog1.valence),
            "final_arousal": rounded(cog1.arousal),
        },
        "causal_reasoning": t1.causal_link,
        "knowledge_sources": dict(sorted(Counter(e.source for e in gained).items())),
        "metadata": {
            "entity_id": entity_id, "entity_type": ent.type,
            "timepoint_transition": f"{t0.id} -> {t1.id}",
            "co_present_entities": others, "event_causal_parent": t1.causal_parent,
        },
    }
    run = h.run
    return {
        "prompt": prompt,
        "completion": json.dumps(completion, ensure_ascii=False),
        "metadata": {
            "entity_id": entity_id, "timepoint_id": t1.id, "from_timepoint_id": t0.id, "run_id": run.id,
            "mechanisms": mechanisms, "temporal_mode": run.mode, "template": run.template, "model": run.model,
            "seed": run.seed, "training_safe": run.training_safe, "archetype": ent.archetype,
            "speaker": entity_id in h.speakers(t1), "position": h.position(t1).as_dict(),
        },
    }


def distinctive(record: dict) -> str:
    """What sets a training record apart: the sections that are the entity's own (its standing with the
    others, its arc, its state before), the event it lives through, and what followed. The shared context
    (history, room, mode) carries over between records by design, so whole prompts would make an entity's
    consecutive records, or everyone's at one event, look like duplicates."""
    sections = record["prompt"].split("\n\n=== ")
    own = [s for s in sections if s.startswith(OWN_SECTIONS)]
    return "\n".join([record["metadata"]["entity_id"], *own, record["completion"]])


def training_records(source: RunStore | RunHistory) -> list[dict]:
    h = RunHistory.of(source)
    records = []
    for t0, t1 in zip(h.timepoints, h.timepoints[1:]):
        for entity_id in t1.present:
            if entity_id in t0.present and entity_id in h.entities and h.state(entity_id, t1) \
                    and h.state_at(entity_id, t1):
                records.append(_record(h, entity_id, t0, t1))
    return records


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    return [write_jsonl(out_dir / "training.jsonl", training_records(store), compression)]
