"""What a character sees when writing a turn: who they are, how they talk, what they know, the scene."""

from __future__ import annotations

from datetime import datetime

from ..simulation import Simulation
from ..world import CognitiveState, Entity, Timepoint, Turn

KNOWLEDGE_SHOWN = 10
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


def _voice(e: Entity) -> str:
    g = e.voice_guide
    lines = []
    if g.get("sentence_length"):
        lines.append(f"Sentence length: {g['sentence_length']}.")
    if g.get("verbal_tics"):
        lines.append(f"Verbal habits: {', '.join(g['verbal_tics'])}.")
    if g.get("never_says"):
        lines.append(f"Never says: {', '.join(g['never_says'])}.")
    if g.get("disagreement_style"):
        lines.append(f"When disagreeing: {g['disagreement_style']}.")
    if g.get("specificity_anchors"):
        lines.append(f"Refers to specifics like: {', '.join(g['specificity_anchors'])}.")
    if e.speech_examples:
        lines.append("Examples of your voice:\n" + "\n".join(f'- "{s}"' for s in e.speech_examples[:3]))
    return "\n".join(lines)


def _knowledge(sim: Simulation, e: Entity) -> str:
    events = sorted(sim.exposures.get(e.id, []), key=lambda x: (-x.confidence, x.timestamp))[:KNOWLEDGE_SHOWN]
    return "\n".join(f"- {x.information} (from {x.source}, {x.confidence:.1f})" for x in events)


def transcript(sim: Simulation, turns: list[Turn], last: int = HISTORY_SHOWN) -> str:
    return "\n".join(f"{sim.entities[t.speaker].name}: {t.content}" for t in turns[-last:])


def character_messages(sim: Simulation, speaker: Entity, tp: Timepoint, participants: list[str],
                       turns: list[Turn]) -> list[dict]:
    others = ", ".join(sim.entities[p].name for p in participants if p != speaker.id)
    who = f"You are {speaker.name}" + (f", {speaker.title}" if speaker.title else "") + "."
    system = "\n\n".join(part for part in [
        f"{who} {speaker.description}",
        f"Personality: {', '.join(speaker.traits)}." if speaker.traits else "",
        f"Goals: {'; '.join(speaker.goals)}." if speaker.goals else "",
        _voice(speaker),
        f"What you know:\n{_knowledge(sim, speaker)}",
        f"You feel {mood_words(speaker.cognitive)}.",
        "Stay in character. Write only your next spoken line: no narration, no stage directions, no name prefix. "
        "Answer in JSON with keys content, emotional_tone and knowledge_references.",
    ] if part)
    scene = f"Scene: {sim.location}, {spoken_time(tp.timestamp)}.\nNow: {tp.event}\nWith you: {others}."
    if not turns:
        ask = f"You speak first. What do you, {speaker.name}, say?"
    else:
        last = turns[-1]
        earlier = transcript(sim, turns[:-1])
        ask = (f"Conversation so far:\n{earlier}\n\n" if earlier else "") + \
            f'{sim.entities[last.speaker].name} says: "{last.content}"\nWhat do you, {speaker.name}, say next?'
    user = f"{scene}\n\n{ask}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
