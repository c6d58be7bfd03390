"""After a dialog: what was learned (`told` exposure events) and how everyone's state moved."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, create_model

from ..simulation import Simulation
from ..world import Dialog, Entity, ExposureEvent, KnowledgeItem, Timepoint
from .prompts import transcript

_POSITIVE = {"agree", "agreed", "good", "great", "thanks", "thank", "glad", "yes", "hope", "trust", "deal",
             "together", "fair", "right", "support", "welcome", "progress", "win"}
_NEGATIVE = {"no", "not", "never", "wrong", "fail", "failed", "risk", "worried", "afraid", "angry", "lie",
             "blame", "problem", "refuse", "threat", "disaster", "loss", "cannot", "won't", "doubt"}
_AROUSING_TONES = {"tense", "anxious", "defensive", "frustrated", "angry", "sarcastic"}
_CALM_TONES = {"calm", "warm", "neutral"}
_WORDS = re.compile(r"[a-z']+")


class Fact(BaseModel):
    content: str = Field(max_length=160, description="One concrete thing said that a listener now knows")


def outcome_schema(participants: list[str]) -> type[BaseModel]:
    """The summary schema, with each fact's speaker constrained to the dialog's participants."""
    speaker = Literal[tuple(participants)]
    said = create_model("SaidFact", __base__=Fact, speaker=(speaker, ...))
    return create_model(
        "DialogOutcome",
        summary=(str, Field(max_length=300, description="What happened in the conversation, in two sentences")),
        facts=(list[said], Field(max_length=4)),
    )


async def record_outcome(sim: Simulation, tp: Timepoint, dialog: Dialog) -> None:
    """Summarise the dialog and give every listener a `told` event for each fact said (M19)."""
    schema = outcome_schema(dialog.participants)
    names = ", ".join(f"{p} ({sim.entities[p].name})" for p in dialog.participants)
    outcome = await sim.gateway.structured("extraction", [
        {"role": "system", "content": "You summarise conversations and list the concrete facts each speaker "
                                      "revealed. Skip greetings and filler. Answer in JSON."},
        {"role": "user", "content": f"Speakers: {names}\nEvent: {tp.event}\n\n{transcript(sim, dialog.turns, 40)}"},
    ], schema, temperature=0.3, frequency_penalty=0.5)
    dialog.summary = outcome.summary
    said = dict.fromkeys((f.speaker, " ".join(f.content.split())) for f in outcome.facts if f.content.strip())
    items = [KnowledgeItem(content=content, speaker=speaker, listeners=[p for p in dialog.participants if p != speaker])
             for speaker, content in said]
    told = [ExposureEvent(entity_id=listener, event_type="told", information=item.content, source=item.speaker,
                          timestamp=tp.timestamp, confidence=item.confidence, timepoint_id=tp.id)
            for item in items for listener in item.listeners]
    sim.expose(told)
    if told:
        sim.fire("M19", "knowledge_extraction", tp.id)


def update_emotions(entity: Entity, dialog: Dialog) -> None:
    """Reference §5.4: keyword valence ±0.02/hit (±0.3), arousal decays to 0.3 then moves (±0.25),
    energy falls 2 points per own turn."""
    words = [w for t in dialog.turns for w in _WORDS.findall(t.content.lower())]
    own = [t for t in dialog.turns if t.speaker == entity.id]
    tones = [t.emotional_tone for t in own]
    hits = sum(w in _POSITIVE for w in words) - sum(w in _NEGATIVE for w in words)
    hits += sum(t in ("warm", "hopeful", "confident") for t in tones) - sum(t in _AROUSING_TONES for t in tones)
    c = entity.cognitive
    valence = c.valence + max(-0.3, min(0.3, 0.02 * hits))
    arousal = 0.3 + 0.85 * (c.arousal - 0.3)
    stirred = sum(t in _AROUSING_TONES for t in tones) - sum(t in _CALM_TONES for t in tones)
    arousal += max(-0.25, min(0.25, 0.03 * stirred + min(len(own) / 10, 0.08)))
    entity.cognitive = c.model_copy(update={
        "valence": round(max(-1.0, min(1.0, valence)), 4),
        "arousal": round(max(0.0, min(1.0, arousal)), 4),
        "energy": round(max(0.0, c.energy - 2 * len(own)), 4),
    })
