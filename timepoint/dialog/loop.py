"""A multi-party dialog written one turn at a time, each turn by its speaker's own model call."""

from __future__ import annotations

import random
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from ..config import DialogConfig
from ..simulation import Simulation
from ..world import Dialog, Timepoint, Turn
from .prompts import character_messages

TONES = ("calm", "warm", "confident", "hopeful", "neutral", "tense", "anxious", "defensive",
         "frustrated", "angry", "sarcastic")


class TurnDraft(BaseModel):
    content: str = Field(min_length=1, max_length=240, description="The spoken line")
    emotional_tone: Literal[TONES]
    knowledge_references: list[Annotated[str, Field(max_length=60)]] = Field(default=[], max_length=2)


def spoken_line(text: str, names: list[str]) -> str:
    """The speaker's own line: models sometimes prefix a name or run on into the transcript
    ("... Name: ..."); drop the prefix and cut at the run-on."""
    text = text.strip()
    for name in names:
        if text.startswith(f"{name}:"):
            text = text[len(name) + 1:]
    for name in names:
        cut = text.find(f"{name}:", 1)
        if cut > 0:
            text = text[:cut]
    return " ".join(text.split())


def turn_bounds(participants: int, high_conflict: bool, cfg: DialogConfig) -> tuple[int, int]:
    """Reference §5.1: 6 + n turns, 3 more in high conflict; clipped to the configured range."""
    base = 6 + participants + (3 if high_conflict else 0)
    lo, hi = max(6, base - 2), min(16, base + 3)
    lo = min(max(lo, cfg.min_turns), cfg.max_turns)
    return lo, max(lo, min(hi, cfg.max_turns))


def turn_range(sim: Simulation, participants: list[str]) -> tuple[int, int]:
    """High conflict: mean arousal above 0.6 and mean valence below −0.1."""
    cogs = [sim.entities[p].cognitive for p in participants]
    conflict = sum(c.arousal for c in cogs) / len(cogs) > 0.6 and sum(c.valence for c in cogs) / len(cogs) < -0.1
    return turn_bounds(len(participants), conflict, sim.config.dialog)


def next_speaker(rng: random.Random, participants: list[str], turns: list[Turn]) -> str:
    """Anyone but the last speaker, favouring those who have spoken least (no strict round-robin)."""
    last = turns[-1].speaker if turns else None
    candidates = [p for p in participants if p != last]
    spoken = {p: sum(t.speaker == p for t in turns) for p in candidates}
    return rng.choices(candidates, weights=[1 / (1 + spoken[p]) for p in candidates])[0]


async def run_dialog(sim: Simulation, tp: Timepoint, participants: list[str]) -> Dialog:
    lo, hi = turn_range(sim, participants)
    count = sim.rng.randint(lo, hi)
    turns: list[Turn] = []
    for _ in range(count):
        speaker = sim.entities[next_speaker(sim.rng, participants, turns)]
        # Reference defaults until persona parameters arrive: penalties 0.5/0.3 keep small models out of loops.
        params = {"temperature": sim.config.model.temperature, "frequency_penalty": 0.5, "presence_penalty": 0.3}
        draft = await sim.gateway.structured(
            "dialog", character_messages(sim, speaker, tp, participants, turns), TurnDraft, **params)
        line = spoken_line(draft.content, [sim.entities[p].name for p in participants])
        if not line:
            continue
        turns.append(Turn(index=len(turns), speaker=speaker.id, content=line,
                          emotional_tone=draft.emotional_tone, knowledge_references=draft.knowledge_references,
                          params=params))
    dialog = Dialog(id=f"dialog_{tp.id}", timepoint_id=tp.id, participants=participants, turns=turns)
    sim.fire("M11", "dialog", tp.id)
    return dialog
