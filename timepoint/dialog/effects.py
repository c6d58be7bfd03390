"""After a dialog, one aftermath call judges what it did: a summary, how it left each participant's
mood (the dialog's own, M11), what each speaker gave away that listeners now know (M19), and how
every tactic aimed at someone landed (M13, which moves trust). Each participant's memory and
preoccupations are updated by their own calls (M15). A mechanism that is off is absent from the
aftermath's schema, makes no calls of its own and leaves no rows. State changes are the model's
judgement mapped through `DELTAS`, never counted keywords."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, Field, create_model

from ..concurrency import gather_all
from ..llm.schema_cache import cached_schema
from ..mechanisms import circadian
from ..numeric import clamp
from ..simulation import Simulation
from ..world import Attempt, Dialog, Entity, ExposureEvent, KnowledgeItem, Memory, Timepoint, Topic, Unspoken
from .context import knowledge_at, withheld
from .prompts import transcript

_WORDS = re.compile(r"[a-z']+")

CATEGORIES = ("fact", "decision", "opinion", "plan", "revelation", "question", "agreement")
SALIENCE_BY_WORD = {"low": 0.25, "medium": 0.5, "high": 0.75, "critical": 1.0}
RESIDUES = ("relief", "anger", "anxiety", "hope", "shame", "resolve", "suspicion", "sadness", "pride", "none")

# Every judged enum and what it moves, in one table: a participant's valence (−1..1) and arousal
# (0..1) per dialog, and the speaker's trust in a tactic's target per exchange (the pair's trust
# moves half as much). ±0.3 valence is the reference's per-dialog cap; trust is the reference's.
DELTAS: dict[str, dict[str, float]] = {
    "valence": {"much worse": -0.3, "worse": -0.12, "unchanged": 0.0, "better": 0.12, "much better": 0.3},
    "arousal": {"calmer": -0.15, "unchanged": 0.0, "more stirred": 0.15},
    "trust": {"accepted": 0.1, "partially_acknowledged": 0.03, "deferred": 0.0, "ignored": -0.05,
              "dismissed": -0.15},
}
# The reference's tactics (its character arc); the aftermath names one per exchange.
TACTICS = ("data_argument", "emotional_appeal", "authority_claim", "procedural_challenge", "alliance_appeal",
           "threat_escalation", "humor_deflection", "silence_withdrawal")
MAX_EXCHANGES = 8
AROUSAL_REST, AROUSAL_KEEP = 0.3, 0.85  # arousal settles toward .3 after each dialog, then moves as judged
TURN_ENERGY = 2.0  # energy points a turn of one's own costs, before M14's hour and fatigue


@cached_schema
def aftermath_schema(participants: list[str], knowledge: bool = True, exchanges: bool = True) -> type[BaseModel]:
    """The aftermath call's answer; every speaker, target and feeler is one of the dialog's participants.
    `knowledge` (M19) adds the items said, `exchanges` (M13) the judged tactics."""
    who = Literal[tuple(participants)]
    fields: dict = {"summary": (str, Field(max_length=300, description="What happened, in two sentences"))}
    if knowledge:
        item = create_model(
            "ExtractedItem",
            content=(str, Field(max_length=160, description="One concrete thing said that a listener now knows")),
            speaker=(who, ...),
            category=(Literal[CATEGORIES], ...),
        )
        fields["items"] = (list[item], Field(max_length=4))
    if exchanges:
        exchange = create_model(
            "Exchange",
            speaker=(who, ...),
            target=(who, Field(description="Whom the tactic was aimed at: never the speaker")),
            tactic=(Literal[TACTICS], ...),
            outcome=(Literal[tuple(DELTAS["trust"])], Field(description="How the target took it, by what they "
                                                                      "said and did next")),
            reason=(str, Field(max_length=120, description="Why that outcome, briefly")),
        )
        fields["exchanges"] = (list[exchange], Field(max_length=MAX_EXCHANGES))
    feeling = create_model(
        "Feeling",
        who=(who, ...),
        mood=(Literal[tuple(DELTAS["valence"])], Field(description="How the conversation left their mood")),
        stir=(Literal[tuple(DELTAS["arousal"])], ...),
        why=(str, Field(max_length=120, description="Why, briefly")),
    )
    fields["feelings"] = (list[feeling], Field(max_length=len(participants), description="One per participant"))
    return create_model("DialogOutcome", **fields)


def outcome_schema(participants: list[str]) -> type[BaseModel]:
    """The aftermath schema with everything in it (what an estimate prices)."""
    return aftermath_schema(participants, True, True)


class MemoryItem(BaseModel):
    summary: str = Field(max_length=160)
    emotional_residue: Literal[RESIDUES]
    salience: Literal[tuple(SALIENCE_BY_WORD)]


class MemoryNote(BaseModel):
    items: list[MemoryItem] = Field(min_length=1, max_length=3)


@cached_schema
def rumination_schema(topics: list[str]) -> type[BaseModel]:
    fields = {"new_topics": (list[Annotated[str, Field(max_length=80)]], Field(default=[], max_length=2))}
    if topics:
        fields["addressed"] = (list[Literal[tuple(topics)]], Field(default=[], max_length=len(topics)))
    return create_model("Rumination", **fields)


def _lines(sim: Simulation, dialog: Dialog, last: int = 40) -> str:
    """The transcript, each turn aimed at someone marked with whom (the steering's target)."""
    def name(eid: str) -> str:
        return sim.entities[eid].name

    return "\n".join(
        f"{name(t.speaker)}" + (f" (to {name(t.move_target)})" if t.move_target in dialog.participants
                                and t.move_target != t.speaker else "") + f": {t.content}"
        for t in dialog.turns[-last:])


async def judge_aftermath(sim: Simulation, tp: Timepoint, dialog: Dialog) -> BaseModel | None:
    """The one aftermath call: a summary and everyone's feelings, plus what was said (M19) and how each
    tactic landed (M13) when those are on. None if the call failed (a gap is recorded)."""
    knowledge, exchanges = "M19" in sim.enabled, "M13" in sim.enabled
    names = ", ".join(f"{p} ({sim.entities[p].name})" for p in dialog.participants)
    asks = ["Summarise the conversation in two sentences."]
    if knowledge:
        asks.append("List the concrete facts, decisions and revelations each speaker gave away; skip greetings "
                    "and filler.")
    if exchanges:
        asks.append("List the tactics speakers aimed at one another: who, at whom, which tactic, and how the "
                    "target took it, judged by what they said and did next (ignored: no answer), with a short "
                    "reason. Judge what was meant, not polite words.")
    asks.append("For each participant, say how the conversation left their mood and whether it calmed or "
                "stirred them, with a short reason.")
    return await sim.attempt("dialog aftermath", sim.gateway.structured("extraction", [
        {"role": "system", "content": "You read a conversation and judge what it did. " + " ".join(asks)
                                      + " Name people by their ids. Answer in JSON."},
        {"role": "user", "content": f"Speakers: {names}\nEvent: {tp.event}\n\n{_lines(sim, dialog)}"},
    ], aftermath_schema(dialog.participants, knowledge, exchanges), temperature=0.3, frequency_penalty=0.5), tp.id)


def tell(sim: Simulation, tp: Timepoint, dialog: Dialog, said_items: list) -> None:
    """M19: every listener gets a `told` event for each item said."""
    said = dict.fromkeys((i.speaker, " ".join(i.content.split())) for i in said_items if i.content.strip())
    items = [KnowledgeItem(content=content, speaker=speaker, listeners=[p for p in dialog.participants if p != speaker])
             for speaker, content in said]
    told = [ExposureEvent(entity_id=listener, event_type="told", information=item.content, source=item.speaker,
                          timestamp=tp.timestamp, confidence=item.confidence, timepoint_id=tp.id)
            for item in items for listener in item.listeners]
    sim.expose(told)
    if told:
        sim.fire("M19", "knowledge_extraction", tp.id)


async def reflect(sim: Simulation, tp: Timepoint, dialog: Dialog, entity: Entity) -> tuple | None:
    """M15 after a dialog, the calls: an episodic memory, and what the character keeps turning over.
    None when they failed (a gap): this participant keeps the memory it had."""
    lines = transcript(sim, dialog.turns, 40)
    topics = [t.topic for t in entity.mind.rumination]
    # Stable first: every participant's two calls open with the same transcript, so a model that keeps
    # prompt states (the embedded one) reads it once per dialog rather than twice per participant.
    opening = [{"role": "system", "content": "A conversation you took part in follows. Answer as yourself, in JSON."}]
    who = f"{lines}\n\nYou are {entity.name}, {entity.title}. {entity.description}"
    reflection = await sim.attempt(f"memory update ({entity.id})", gather_all(
        sim.gateway.structured("summary", [*opening, {
            "role": "user", "content": f"{who}\nRecord what you will remember of this conversation."}],
            MemoryNote, temperature=0.5),
        sim.gateway.structured("summary", [*opening, {
            "role": "user", "content": f"{who}\nYour preoccupations: {'; '.join(topics) or 'none'}. Say which of "
                                       "them the conversation addressed, and name at most two new ones."}],
            rumination_schema(topics), temperature=0.5),
    ), tp.id)
    return reflection


def remember(sim: Simulation, tp: Timepoint, entity: Entity, reflection: tuple) -> None:
    """M15, the effect: the memory is kept, preoccupations fade or press, and one that comes to press
    hard is a `concern` exposure. Applied after the calls, in participant order, so a run's records do
    not depend on which call finished first."""
    note, brooding = reflection
    mind = entity.mind
    memories = [Memory(summary=m.summary, emotional_residue=m.emotional_residue, salience=SALIENCE_BY_WORD[m.salience],
                       timepoint_id=tp.id) for m in note.items]
    addressed = set(getattr(brooding, "addressed", []))
    kept, before = [], {t.topic: t.intensity for t in mind.rumination}
    for t in mind.rumination:
        t = t.model_copy(update={"intensity": round(clamp(t.intensity - 0.2, 0, 1), 4)} if t.topic in addressed
                         else {"intensity": round(clamp(t.intensity + 0.1, 0, 1), 4), "recurrence": t.recurrence + 1})
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


def update_emotions(sim: Simulation, tp: Timepoint, entity: Entity, dialog: Dialog,
                    shift: tuple[str, str] | None) -> None:
    """Speaking costs energy (`TURN_ENERGY` a turn, ×1.5 at night and more when tired if M14 is on).
    A judged `shift` (mood, stir) moves valence by its delta, and arousal settles toward .3
    (0.3 + 0.85·(a − 0.3)) then moves by its delta; None (no judgement) leaves the feelings be."""
    own = sum(t.speaker == entity.id for t in dialog.turns)
    factor = circadian.effort_factor(tp.timestamp) if circadian.ID in sim.enabled else 1.0
    c = entity.cognitive
    update = {"energy": round(max(0.0, c.energy - TURN_ENERGY * own * factor), 4)}
    if shift is not None:
        mood, stir = shift
        arousal = AROUSAL_REST + AROUSAL_KEEP * (c.arousal - AROUSAL_REST) + DELTAS["arousal"][stir]
        update |= {"valence": round(clamp(c.valence + DELTAS["valence"][mood], -1.0, 1.0), 4),
                   "arousal": round(clamp(arousal, 0.0, 1.0), 4)}
    entity.cognitive = c.model_copy(update=update)


def update_arcs(sim: Simulation, tp: Timepoint, exchanges: list) -> None:
    """M13: each judged exchange is an attempt in the speaker's arc, with its reason; its outcome moves
    the speaker's trust ledger by `DELTAS["trust"]` and the pair's trust by half that. M13 fires
    only if some trust really moved."""
    moved = False
    for x in exchanges:
        if x.speaker == x.target:
            continue
        speaker = sim.entities[x.speaker]
        delta = DELTAS["trust"][x.outcome]
        mind = speaker.mind
        ledger = dict(mind.trust_ledger)
        before = ledger.get(x.target, 0.0)
        ledger[x.target] = round(clamp(before + delta, -1, 1), 4)
        attempt = Attempt(timepoint_id=tp.id, tactic=x.tactic, target=x.target, outcome=x.outcome,
                          reason=" ".join(x.reason.split()))
        speaker.mind = mind.model_copy(update={"attempts": (mind.attempts + [attempt])[-30:], "trust_ledger": ledger})
        moved = moved or ledger[x.target] != before
        rel = sim.relationships.get(tuple(sorted((x.speaker, x.target))))
        if rel is not None:
            trust = rel.trust
            rel.trust = round(clamp(trust + delta / 2, 0, 1), 4)
            rel.interactions += 1
            moved = moved or rel.trust != trust
    if moved:
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
    """The aftermath call and, with M15, every participant's reflection run concurrently; then the
    state moves as judged."""
    reflecting = dialog.participants if "M15" in sim.enabled else []
    judged, *reflections = await gather_all(judge_aftermath(sim, tp, dialog),
                                            *(reflect(sim, tp, dialog, sim.entities[p]) for p in reflecting))
    for pid, reflection in zip(reflecting, reflections):
        if reflection is not None:
            remember(sim, tp, sim.entities[pid], reflection)
    if judged is not None:
        dialog.summary = judged.summary
        if "M19" in sim.enabled:
            tell(sim, tp, dialog, judged.items)
    feelings = {f.who: (f.mood, f.stir) for f in reversed(judged.feelings)} if judged is not None else {}
    for pid in dialog.participants:
        shift = feelings.get(pid, ("unchanged", "unchanged")) if judged is not None else None
        update_emotions(sim, tp, sim.entities[pid], dialog, shift)
    if judged is not None and "M13" in sim.enabled:
        update_arcs(sim, tp, judged.exchanges)
    update_unspoken(sim, tp, dialog)
