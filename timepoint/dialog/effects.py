"""After a dialog: what was learned (M19), what each participant remembers and broods on (M15),
how their feelings moved, and what the exchange did to trust between them (M13)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, Field, create_model

from ..concurrency import gather_all
from ..llm.schema_cache import cached_schema
from ..simulation import Simulation
from ..world import Attempt, Dialog, Entity, ExposureEvent, KnowledgeItem, Memory, Timepoint, Topic, Unspoken
from .context import knowledge_at, withheld
from .prompts import transcript

_POSITIVE = {"agree", "agreed", "good", "great", "thanks", "thank", "glad", "yes", "hope", "trust", "deal",
             "together", "fair", "right", "support", "welcome", "progress", "win"}
_NEGATIVE = {"no", "not", "never", "wrong", "fail", "failed", "risk", "worried", "afraid", "angry", "lie",
             "blame", "problem", "refuse", "threat", "disaster", "loss", "cannot", "won't", "doubt"}
_AROUSING_TONES = {"tense", "anxious", "defensive", "frustrated", "angry", "sarcastic"}
_CALM_TONES = {"calm", "warm", "neutral"}
_WORDS = re.compile(r"[a-z']+")

CATEGORIES = ("fact", "decision", "opinion", "plan", "revelation", "question", "agreement")
LEVELS = {"low": 0.25, "medium": 0.5, "high": 0.75, "critical": 1.0}
RESIDUES = ("relief", "anger", "anxiety", "hope", "shame", "resolve", "suspicion", "sadness", "pride", "none")

# Tactics by the words a turn uses; the first that matches wins (reference §2 character arc).
TACTICS = [
    ("threat_escalation", ("or else", "consequences", "resign", "walk away", "sue", "fire you", "last chance")),
    ("authority_claim", ("my call", "i decide", "i'm in charge", "my decision", "as ceo", "order", "authority")),
    ("procedural_challenge", ("process", "procedure", "protocol", "policy", "rule", "vote", "minutes", "bylaws")),
    ("emotional_appeal", ("feel", "worried", "afraid", "care", "hope", "scared", "family", "trust me")),
    ("alliance_appeal", ("together", "with me", "we both", "on my side", "back me")),
    ("data_argument", ("%", "percent", "data", "number", "evidence", "figure", "million", "ppm", "p =")),
]
OUTCOME_WORDS = [
    ("dismissed", ("no", "wrong", "nonsense", "irrelevant", "ridiculous", "not now", "absolutely not", "that's not")),
    ("deferred", ("later", "revisit", "think about it", "table", "tomorrow", "next week", "let me check")),
    ("partially_acknowledged", ("fair", "maybe", "partly", "perhaps", "some truth", "to a point")),
    ("accepted", ("agree", "yes", "fine", "deal", "okay", "you're right", "good point", "let's do")),
]
TRUST_DELTA = {"accepted": 0.1, "dismissed": -0.15, "ignored": -0.05, "partially_acknowledged": 0.03,
               "deferred": 0.0}


def _clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


def _has(text: str, phrases: tuple[str, ...]) -> bool:
    lowered = f" {text.lower()} "
    return any(re.search(rf"(?<![a-z]){re.escape(p)}(?![a-z])", lowered) for p in phrases)


@cached_schema
def outcome_schema(participants: list[str]) -> type[BaseModel]:
    """M19 extraction, with each item's speaker constrained to the dialog's participants."""
    item = create_model(
        "ExtractedItem",
        content=(str, Field(max_length=160, description="One concrete thing said that a listener now knows")),
        speaker=(Literal[tuple(participants)], ...),
        category=(Literal[CATEGORIES], ...),
    )
    return create_model(
        "DialogOutcome",
        summary=(str, Field(max_length=300, description="What happened in the conversation, in two sentences")),
        items=(list[item], Field(max_length=4)),
    )


class MemoryItem(BaseModel):
    summary: str = Field(max_length=160)
    emotional_residue: Literal[RESIDUES]
    salience: Literal[tuple(LEVELS)]


class MemoryNote(BaseModel):
    items: list[MemoryItem] = Field(min_length=1, max_length=3)


@cached_schema
def rumination_schema(topics: list[str]) -> type[BaseModel]:
    fields = {"new_topics": (list[Annotated[str, Field(max_length=80)]], Field(default=[], max_length=2))}
    if topics:
        fields["addressed"] = (list[Literal[tuple(topics)]], Field(default=[], max_length=len(topics)))
    return create_model("Rumination", **fields)


async def record_outcome(sim: Simulation, tp: Timepoint, dialog: Dialog) -> None:
    """Summarise the dialog and give every listener a `told` event for each item said (M19)."""
    names = ", ".join(f"{p} ({sim.entities[p].name})" for p in dialog.participants)
    outcome = await sim.attempt("knowledge extraction", sim.gateway.structured("extraction", [
        {"role": "system", "content": "You summarise conversations and list the concrete facts, decisions and "
                                      "revelations each speaker gave away. Skip greetings and filler. "
                                      "Answer in JSON."},
        {"role": "user", "content": f"Speakers: {names}\nEvent: {tp.event}\n\n{transcript(sim, dialog.turns, 40)}"},
    ], outcome_schema(dialog.participants), temperature=0.3, frequency_penalty=0.5), tp.id)
    if outcome is None:
        return  # no one is told anything from this dialog
    dialog.summary = outcome.summary
    said = dict.fromkeys((i.speaker, " ".join(i.content.split())) for i in outcome.items if i.content.strip())
    items = [KnowledgeItem(content=content, speaker=speaker, listeners=[p for p in dialog.participants if p != speaker])
             for speaker, content in said]
    told = [ExposureEvent(entity_id=listener, event_type="told", information=item.content, source=item.speaker,
                          timestamp=tp.timestamp, confidence=item.confidence, timepoint_id=tp.id)
            for item in items for listener in item.listeners]
    sim.expose(told)
    if told:
        sim.fire("M19", "knowledge_extraction", tp.id)


async def reflect(sim: Simulation, tp: Timepoint, dialog: Dialog, entity: Entity) -> None:
    """M15 after a dialog: an episodic memory, and what the character keeps turning over."""
    lines = transcript(sim, dialog.turns, 40)
    topics = [t.topic for t in entity.mind.rumination]
    who = f"You are {entity.name}, {entity.title}. {entity.description}"
    reflection = await sim.attempt(f"memory update ({entity.id})", gather_all(
        sim.gateway.structured("summary", [
            {"role": "system", "content": f"{who} Record what you will remember of this conversation. "
                                          "Answer in JSON."},
            {"role": "user", "content": lines}], MemoryNote, temperature=0.5),
        sim.gateway.structured("summary", [
            {"role": "system", "content": f"{who} Say which of your preoccupations the conversation addressed, "
                                          "and name at most two new ones. Answer in JSON."},
            {"role": "user", "content": f"Your preoccupations: {'; '.join(topics) or 'none'}\n\n{lines}"}],
            rumination_schema(topics), temperature=0.5),
    ), tp.id)
    if reflection is None:
        return  # this participant keeps the memory it had
    note, brooding = reflection
    mind = entity.mind
    memories = [Memory(summary=m.summary, emotional_residue=m.emotional_residue, salience=LEVELS[m.salience],
                       timepoint_id=tp.id) for m in note.items]
    addressed = set(getattr(brooding, "addressed", []))
    kept, before = [], {t.topic: t.intensity for t in mind.rumination}
    for t in mind.rumination:
        t = t.model_copy(update={"intensity": round(_clamp(t.intensity - 0.2, 0, 1), 4)} if t.topic in addressed
                         else {"intensity": round(_clamp(t.intensity + 0.1, 0, 1), 4), "recurrence": t.recurrence + 1})
        if t.intensity > 0.05:
            kept.append(t)
    kept += [Topic(topic=" ".join(n.split())[:80], intensity=0.4) for n in brooding.new_topics
             if n.strip() and n not in before]
    kept = sorted(kept, key=lambda t: -t.intensity)[:10]
    entity.mind = mind.model_copy(update={"memory": (mind.memory + memories)[-20:], "rumination": kept})
    sim.expose([ExposureEvent(entity_id=entity.id, event_type="concern", information=f"Preoccupied with: {t.topic}",
                              source=entity.id, timestamp=tp.timestamp, confidence=round(t.intensity, 2),
                              timepoint_id=tp.id)
                for t in kept if t.intensity > 0.5 and before.get(t.topic, 0.0) <= 0.5])
    sim.fire("M15", "post_dialog", tp.id)


def update_emotions(entity: Entity, dialog: Dialog) -> None:
    """Reference §5.4: keyword valence ±0.02/hit (±0.3), arousal decays to 0.3 then moves (±0.25),
    energy falls 2 points per own turn."""
    words = [w for t in dialog.turns for w in _WORDS.findall(t.content.lower())]
    own = [t for t in dialog.turns if t.speaker == entity.id]
    tones = [t.emotional_tone for t in own]
    hits = sum(w in _POSITIVE for w in words) - sum(w in _NEGATIVE for w in words)
    hits += sum(t in ("warm", "hopeful", "confident") for t in tones) - sum(t in _AROUSING_TONES for t in tones)
    c = entity.cognitive
    valence = c.valence + _clamp(0.02 * hits, -0.3, 0.3)
    arousal = 0.3 + 0.85 * (c.arousal - 0.3)
    stirred = sum(t in _AROUSING_TONES for t in tones) - sum(t in _CALM_TONES for t in tones)
    arousal += _clamp(0.03 * stirred + min(len(own) / 10, 0.08), -0.25, 0.25)
    entity.cognitive = c.model_copy(update={
        "valence": round(_clamp(valence, -1.0, 1.0), 4),
        "arousal": round(_clamp(arousal, 0.0, 1.0), 4),
        "energy": round(max(0.0, c.energy - 2 * len(own)), 4),
    })


def classify_tactic(move: str, content: str) -> str:
    if move == "silence":
        return "silence_withdrawal"
    if move == "humor":
        return "humor_deflection"
    if move == "alliance_signal":
        return "alliance_appeal"
    return next((name for name, words in TACTICS if _has(content, words)), "data_argument")


def judge_outcome(reply: str | None) -> str:
    if reply is None:
        return "ignored"
    return next((name for name, words in OUTCOME_WORDS if _has(reply, words)), "partially_acknowledged")


def update_arcs(sim: Simulation, tp: Timepoint, dialog: Dialog) -> None:
    """M13: each turn aimed at someone is a tactic; the target's next reply (within three turns) is
    its outcome; outcomes move the speaker's trust ledger and the pair's trust."""
    turns = dialog.turns
    for i, turn in enumerate(turns):
        target = turn.move_target or next((t.speaker for t in turns[i + 1:] if t.speaker != turn.speaker), None)
        if target is None or target == turn.speaker:
            continue
        reply = next((t.content for t in turns[i + 1:i + 4] if t.speaker == target), None)
        outcome = judge_outcome(reply)
        speaker = sim.entities[turn.speaker]
        mind = speaker.mind
        ledger = dict(mind.trust_ledger)
        ledger[target] = round(_clamp(ledger.get(target, 0.0) + TRUST_DELTA[outcome], -1, 1), 4)
        attempt = Attempt(timepoint_id=tp.id, tactic=classify_tactic(turn.dialog_move, turn.content),
                          target=target, outcome=outcome)
        speaker.mind = mind.model_copy(update={"attempts": (mind.attempts + [attempt])[-30:], "trust_ledger": ledger})
        rel = sim.relationships[tuple(sorted((turn.speaker, target)))]
        rel.trust = round(_clamp(rel.trust + TRUST_DELTA[outcome] / 2, 0, 1), 4)
        rel.interactions += 1
    sim.fire("M13", "trust", tp.id)


def update_unspoken(sim: Simulation, tp: Timepoint, dialog: Dialog) -> None:
    """What each participant still holds back presses harder (+0.15 urgency); what was said is gone."""
    knowledge = knowledge_at(sim, tp, dialog.participants)  # after the told events: shared items drop out
    for pid in dialog.participants:
        entity = sim.entities[pid]
        said = " ".join(t.content.lower() for t in dialog.turns if t.speaker == pid)
        before = {u.content: u for u in entity.mind.unspoken}
        still: list[Unspoken] = []
        for info in withheld(pid, knowledge):
            words = [w for w in _WORDS.findall(info.lower()) if len(w) > 4]
            if words and sum(w in said for w in words) >= len(words) / 2:
                continue
            old = before.get(info)
            still.append(old.model_copy(update={"urgency": round(min(1.0, old.urgency + 0.15), 4)}) if old
                         else Unspoken(content=info, first_formed=tp.id))
        entity.mind = entity.mind.model_copy(update={"unspoken": still[-10:]})


async def after_dialog(sim: Simulation, tp: Timepoint, dialog: Dialog) -> None:
    """Extraction and every participant's reflection run concurrently; then the state updates."""
    await gather_all(record_outcome(sim, tp, dialog),
                     *(reflect(sim, tp, dialog, sim.entities[p]) for p in dialog.participants))
    for pid in dialog.participants:
        update_emotions(sim.entities[pid], dialog)
    update_arcs(sim, tp, dialog)
    update_unspoken(sim, tp, dialog)
