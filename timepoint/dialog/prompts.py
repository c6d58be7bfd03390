"""Small wording helpers shared by every prompt: times, moods and transcripts in words."""

from __future__ import annotations

from datetime import datetime

from ..simulation import Simulation
from ..world import CognitiveState, Turn

HISTORY_SHOWN = 8


def spoken_time(when: datetime) -> str:
    """Times in prompts are words ("Thursday 17 October 2024, 18:30"): models copy ISO stamps into prose."""
    return f"{when:%A %d %B %Y, %H:%M}"


def mood_words(c: CognitiveState) -> str:
    """Presented emotion in words (reference §5.3 bands)."""
    valence = ("elated" if c.valence > 0.5 else "upbeat" if c.valence > 0.2 else "even" if c.valence > -0.2
               else "uneasy" if c.valence > -0.5 else "distressed")
    arousal = ("agitated" if c.arousal > 0.7 else "alert" if c.arousal > 0.5 else "steady" if c.arousal > 0.3
               else "subdued")
    energy = ("fresh" if c.energy > 80 else "fine" if c.energy > 50 else "tired" if c.energy > 25 else "exhausted")
    return f"{valence}, {arousal}, {energy}"


def transcript(sim: Simulation, turns: list[Turn], last: int = HISTORY_SHOWN) -> str:
    return "\n".join(f"{sim.entities[t.speaker].name}: {t.content}" for t in turns[-last:])
