"""The Fourth Wall: two layers of context per character and turn (reference §5.3).

The back layer shapes how the character speaks and is never to be voiced; the front layer is
what the character may draw on: knowledge visible from this point of the timeline, relationships
in words, presented emotion, body, scene, and the roster's voice guide and speech examples.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..adprs import band, phi
from ..simulation import Simulation
from ..world import Entity, ExposureEvent, Timepoint, visible_to
from .archetypes import PROFILES, archetype_of
from .prompts import mood_words, spoken_time

KNOWLEDGE_CAP = {"tensor_only": 5, "scene": 8, "graph": 12, "dialog": 16, "trained": 20, "full_detail": 20}
KNOWLEDGE_SHOWN = 10


@dataclass(frozen=True)
class Part:
    """A piece of a prompt: its text, the separator before it, and how soon it is cut when the prompt
    must fit a model's budget (0: never; the highest goes first, and among equals the later one)."""
    text: str
    cut: int = 0
    glue: str = "\n\n"


def fit(parts: list[Part], budget: int | None) -> str:
    """The parts in order, less the most expendable ones until the text is at most `budget` characters
    (None: all of them). Parts that are never cut stay even past the budget."""
    kept = [p for p in parts if p.text]
    if budget is not None:
        order = sorted(range(len(kept)), key=lambda i: (-kept[i].cut, -i))
        dropped: set[int] = set()
        for i in order:
            if kept[i].cut == 0 or _length(p for j, p in enumerate(kept) if j not in dropped) <= budget:
                break
            dropped.add(i)
        kept = [p for j, p in enumerate(kept) if j not in dropped]
    return "".join((p.glue if i else "") + p.text for i, p in enumerate(kept))


def _length(parts) -> int:
    return sum(len(p.glue) + len(p.text) for p in parts)


@dataclass
class FourthWall:
    back: str
    front_parts: list[Part]
    knowledge: list[ExposureEvent]   # what the front layer shows, for checks and tests
    phi: float | None

    @property
    def front(self) -> str:
        return fit(self.front_parts, None)


Knowledge = dict[str, list[ExposureEvent]]


def knowledge_at(sim: Simulation, tp: Timepoint, participants: list[str]) -> Knowledge:
    """What each participant may draw on at `tp`, up to their resolution's cap: most confident first,
    then most recent. Nothing changes during a dialog, so a dialog takes this once."""
    ancestry = sim.ancestry(tp)

    def visible(entity: Entity) -> list[ExposureEvent]:
        events = visible_to(sim.exposures.get(entity.id, []), ancestry)
        ranked = sorted(events, key=lambda e: (-e.confidence, -e.timestamp.timestamp()))
        return ranked[:KNOWLEDGE_CAP.get(entity.resolution, 16)]
    return {p: visible(sim.entities[p]) for p in participants}


def withheld(entity_id: str, knowledge: Knowledge) -> list[str]:
    """Information asymmetry: what this character knows that no one else here does (60-char prefix)."""
    others = {e.information[:60] for p, items in knowledge.items() if p != entity_id for e in items}
    return [e.information for e in knowledge[entity_id]
            if e.event_type != "experienced" and e.information[:60] not in others]


def relationship_words(trust: float, alignment: float, interactions: int) -> str:
    feeling = ("deep trust" if trust > 0.8 else "general trust" if trust > 0.6 else "caution" if trust > 0.4
               else "wariness" if trust > 0.2 else "distrust")
    views = (", and you see things much the same way" if alignment > 0.5
             else ", and you see things very differently" if alignment < -0.5 else "")
    history = ("you know each other well" if interactions > 10 else "you have talked several times"
               if interactions > 3 else "you have barely spoken" if interactions == 0 else "you have talked")
    return f"you feel {feeling}{views}; {history}"


def body_words(e: Entity) -> str:
    p = e.physical
    notes = [text for cond, text in [
        (p.pain > 0.5, "in considerable pain"), (0.2 < p.pain <= 0.5, "in some discomfort"),
        (p.health < 0.5, "unwell"), (0.5 <= p.health < 0.8, "not at full health"),
        (p.stamina < 0.3, "physically exhausted"), (p.fever > 38.5, "feverish"),
        (p.mobility < 0.5 and e.type == "human", "moving with difficulty"),
    ] if cond]
    return ", ".join(notes)


def _voice(e: Entity) -> str:
    g = e.voice_guide
    lines = [text for key, text in [
        ("sentence_length", f"Sentence length: {g.get('sentence_length')}."),
        ("verbal_tics", f"Verbal habits: {', '.join(g.get('verbal_tics') or [])}."),
        ("never_says", f"Never says: {', '.join(g.get('never_says') or [])}."),
        ("disagreement_style", f"When disagreeing: {g.get('disagreement_style')}."),
        ("specificity_anchors", f"Refers to specifics like: {', '.join(g.get('specificity_anchors') or [])}."),
    ] if g.get(key)]
    if e.speech_examples:
        lines.append("How you sound:\n" + "\n".join(f'- "{s}"' for s in e.speech_examples[:3]))
    return "\n".join(lines)


def _back(sim: Simulation, e: Entity, tp: Timepoint, knowledge: Knowledge, value: float | None) -> str:
    c, b = e.cognitive, e.tensor.behavior
    archetype = archetype_of(e.title, e.description)
    profile = PROFILES.get(archetype or "")
    held = withheld(e.id, knowledge)[:3]
    urgent = [u.content for u in e.mind.unspoken if u.urgency > 0.4][:3]
    failed = [a for a in e.mind.attempts if a.outcome in ("dismissed", "ignored")][-2:]
    cold = [sim.entities[k].name for k, v in e.mind.trust_ledger.items() if v < -0.2 and k in sim.entities]
    lines = [
        "BACK LAYER: shapes how you speak. Never say any of this aloud.",
        f"True state: valence {c.valence:+.2f}, arousal {c.arousal:.2f}, energy {c.energy:.0f}.",
        f"Temperament: openness {b[0]:.2f}, conscientiousness {b[1]:.2f}, extraversion {b[2]:.2f}, "
        f"agreeableness {b[3]:.2f}, neuroticism {b[4]:.2f}, risk tolerance {b[5]:.2f}.",
        f"Activation φ {value:.2f} ({band(value)})" if value is not None else "",
        f"Timeline position: timepoint {tp.index + 1} of {sim.template.timepoints}.",
        "You know, and they do not: " + "; ".join(held) if held else "",
        "Pressing to be said: " + "; ".join(urgent) if urgent else "",
        "You held back: " + "; ".join(e.mind.suppressed[-3:]) if e.mind.suppressed else "",
        "Preoccupied with: " + "; ".join(t.topic for t in e.mind.rumination if t.intensity > 0.5)
        if any(t.intensity > 0.5 for t in e.mind.rumination) else "",
        "Tactics that failed: " + "; ".join(f"{a.tactic} on {a.target} ({a.outcome})" for a in failed)
        if failed else "",
        f"You no longer trust: {', '.join(cold)}." if cold else "",
        (f"How you argue ({archetype.replace('_', ' ')}): {profile['argument_style']}; when you disagree you "
         f"{profile['disagreement_pattern']}; you never {profile['never_does']}; signature: "
         f"{profile['signature_moves']}. Never sound like: \"{profile['voice_anti_exemplar']}\"") if profile else "",
    ]
    return "\n".join(line for line in lines if line)


def _front(sim: Simulation, e: Entity, tp: Timepoint, participants: list[str],
           knowledge: list[ExposureEvent]) -> list[Part]:
    """The front layer in parts. Under a prompt budget the voice, mood and room go first, then the scene,
    the description, the people and the lesser knowledge; who they are, their goals, their three surest
    items and how a non-human speaks stay."""
    rels = []
    for p in participants:
        if p != e.id:
            r = sim.relationships[tuple(sorted((e.id, p)))]
            rels.append(f"- {sim.entities[p].name} ({sim.entities[p].title}): "
                        f"{relationship_words(r.trust, r.alignment, r.interactions)}")
    body = body_words(e)
    shown = knowledge[:KNOWLEDGE_SHOWN]
    return [
        Part(f"You are {e.name}" + (f", {e.title}" if e.title else "") + "."),
        Part(e.description, cut=3, glue=" "),
        Part(f"Personality: {', '.join(e.traits)}." if e.traits else "", cut=5),
        Part(f"Goals: {'; '.join(e.goals)}." if e.goals else ""),
        Part(_voice(e), cut=5),
        Part("What you know:" if shown else "", cut=2),
        *(Part(f"- {k.information} (from {k.source}, {k.confidence:.1f})", cut=2 if rank < 3 else 4, glue="\n")
          for rank, k in enumerate(shown)),
        Part("The people here:\n" + "\n".join(rels) if rels else "", cut=3),
        Part(f"You appear {mood_words(e.cognitive)}" + (f"; you are {body}." if body else "."), cut=6),
        Part(f"Scene: {sim.location}, {spoken_time(tp.timestamp)}. {tp.event}", cut=4),
        Part(_room(tp), cut=6),
        Part(SPEAKING.get(tp.metadata.get("speaking_modes", {}).get(e.id), "")),
    ]


SPEAKING = {  # M16: how a non-human takes its turn
    "behavioural narration": "You do not use words: your turn is what you do, told in a short line of "
                             "behaviour (movement, sound, stillness) that the others can read.",
    "environmental narration": "You speak through the place itself: creaks, light, wind, bells, temperature — "
                               "a short line of what the surroundings do.",
    "collective consciousness": "You speak as a presence larger than one voice: brief, oracular, in the "
                                "first person plural.",
}


def _room(tp: Timepoint) -> str:
    """M10: the atmosphere of the room, in words, when it was measured."""
    room = tp.metadata.get("atmosphere")
    if not room:
        return ""
    tension = "tense" if room["tension"] > 0.6 else "uneasy" if room["tension"] > 0.3 else "calm"
    return (f"The room feels {tension}; the mood is {room['mood']}"
            + (", formal" if room["formality"] > 0.7 else "") + (", crowded" if room["density"] > 0.8 else "") + ".")


def fourth_wall(sim: Simulation, e: Entity, tp: Timepoint, participants: list[str],
                knowledge: Knowledge | None = None) -> FourthWall:
    """`knowledge` is the dialog's snapshot from `knowledge_at`; taken here when not given."""
    knowledge = knowledge or knowledge_at(sim, tp, participants)
    value = phi(e.adprs, tp.timestamp) if e.adprs else None
    return FourthWall(back=_back(sim, e, tp, knowledge, value),
                      front_parts=_front(sim, e, tp, participants, knowledge[e.id]), knowledge=knowledge[e.id],
                      phi=value)

