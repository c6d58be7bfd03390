"""Chat JSONL: one OpenAI / TRL `messages` record per dialog turn, to fine-tune a character's voice.

The system message is what the speaker was shown in that dialog (its front layer): who they are and
how they talk, what they knew and from whom — visible along the causal ancestry, capped by their
resolution, without what the dialog itself produced — how they stood with the others and how they
came across, as of the dialog's timepoint, and the scene. Earlier turns of the dialog are the history
(their own as assistant, the others' as user) and the turn itself is the answer. The metadata carries
what conditioned the turn: the speaker's valence, arousal and energy going in, the steering move and
its target, the archetype, the room's atmosphere and where the moment sits in the mode.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from ..dialog.context import KNOWLEDGE_CAP, KNOWLEDGE_SHOWN, body_words, relationship_words
from ..dialog.prompts import mood_words
from ..history import DialogRecord, EntityRecord, KnownItem, RunHistory, TimepointRecord, TurnRecord
from ..store import RunStore
from .lines import write_jsonl
from .training import rounded


def _bullets(items: list[str]) -> str:
    return "\n".join(f"- {item}" for item in items) or "- none"


def _persona(ent: EntityRecord) -> str:
    style = [f"{k.replace('_', ' ')}: {'; '.join(x) if isinstance(x, list) else x}"
             for k, x in ent.voice_guide.items() if x]
    return (f"You are {ent.name}, {ent.title}. {ent.description}\n"
            f"Traits: {', '.join(ent.traits)}\n"
            f"Goals:\n{_bullets(ent.goals)}\n"
            f"Voice:\n{_bullets(style)}\n"
            f"How you speak:\n{_bullets(ent.speech_examples)}")


def shown_knowledge(h: RunHistory, entity_id: str, tp: TimepointRecord) -> list[KnownItem]:
    """What the dialog's front layer showed: items visible at `tp` before its dialog spoke, most confident
    first, then most recent, up to the cap of the resolution the entity had there."""
    state = h.state_at(entity_id, tp) or h.state(entity_id, tp)
    resolution = (state.resolution if state else None) or h.entities[entity_id].resolution or "dialog"
    ranked = sorted(h.known(entity_id, tp, during=True), key=lambda e: e.timestamp, reverse=True)
    ranked.sort(key=lambda e: -e.confidence)  # stable: most confident first, the most recent first among equals
    return ranked[:KNOWLEDGE_CAP.get(resolution, 16)][:KNOWLEDGE_SHOWN]


def _knowledge(h: RunHistory, entity_id: str, tp: TimepointRecord) -> str:
    items = [f"{e.information} ({e.event_type}, from {h.name(e.source)}, {e.when}, confidence {e.confidence:.1f})"
             for e in shown_knowledge(h, entity_id, tp)]
    return f"=== WHAT YOU KNOW ===\n{_bullets(items)}"


def _relationships(h: RunHistory, entity_id: str, tp: TimepointRecord, others: list[str]) -> str:
    """How they stood going in: the pair's state as of the timepoint (its opening at the first)."""
    lines = []
    for other in others:
        line = f"{h.name(other)}: {h.relationship_type(entity_id, other)}"
        rel = h.relationship(entity_id, other, tp)
        if rel:
            line += (f"; {relationship_words(rel.trust, rel.alignment, rel.interactions)} (trust {rel.trust:.2f}, "
                     f"alignment {rel.alignment:.2f}, {rel.interactions} interactions so far)")
        lines.append(line)
    return f"=== RELATIONSHIPS ===\n{_bullets(lines)}"


def _presence(h: RunHistory, entity_id: str, tp: TimepointRecord) -> str | None:
    state = h.state(entity_id, tp)
    if state is None:
        return None
    body = body_words(SimpleNamespace(physical=state.physical, type=h.entities[entity_id].type))
    return f"=== HOW YOU COME ACROSS ===\nYou appear {mood_words(state.cognitive)}" + (f"; you are {body}." if body
                                                                                        else ".")


def _scene(h: RunHistory, tp: TimepointRecord) -> str:
    present = ", ".join(f"{h.name(e)} ({h.entities[e].title})" if e in h.entities else e for e in tp.present)
    lines = [f"{tp.timestamp}: {tp.event}", f"Present: {present}"]
    if h.run.has("M10"):
        room = h.atmosphere(tp).atmosphere
        tension = "tense" if room.tension > 0.6 else "uneasy" if room.tension > 0.3 else "calm"
        lines.append(f"The room feels {tension}; the mood is {room.mood}.")
    return "=== SCENE ===\n" + "\n".join(lines)


def _system(h: RunHistory, speaker: str, tp: TimepointRecord, participants: list[str]) -> str:
    parts = [_persona(h.entities[speaker]), _scene(h, tp), _knowledge(h, speaker, tp),
             _relationships(h, speaker, tp, [p for p in participants if p != speaker]), _presence(h, speaker, tp)]
    return "\n\n".join(p for p in parts if p)


OPENING = "(The conversation begins.)"
GO_ON = "(The others wait for you to go on.)"


def _messages(h: RunHistory, system: str, turns: list[TurnRecord], i: int) -> list[dict]:
    """System, then user and assistant strictly alternating — what chat templates that enforce
    alternation accept: the others' consecutive lines merge into one user message, and a short cue
    stands in where the speaker opens the dialog or speaks twice running."""
    speaker = turns[i].speaker
    history: list[dict] = [{"role": "user", "content": OPENING}]
    for t in turns[:i]:
        role = "assistant" if t.speaker == speaker else "user"
        text = t.content if role == "assistant" else f"{h.name(t.speaker)}: {t.content}"
        if history[-1]["role"] == role:
            history[-1]["content"] = text if history[-1]["content"] == OPENING else \
                f"{history[-1]['content']}\n{text}"
        else:
            history.append({"role": role, "content": text})
    if history[-1]["role"] == "assistant":
        history.append({"role": "user", "content": GO_ON})
    return [{"role": "system", "content": system}, *history, {"role": "assistant", "content": turns[i].content}]


def _speaker_state(h: RunHistory, speaker: str, tp: TimepointRecord) -> dict | None:
    state = h.state(speaker, tp)
    if state is None:
        return None
    c = state.cognitive
    return {"valence": rounded(c.valence), "arousal": rounded(c.arousal), "energy": rounded(c.energy)}


def _dialog_records(h: RunHistory, tp: TimepointRecord, dialog: DialogRecord) -> list[dict]:
    turns = dialog.turns
    speakers = list(dict.fromkeys(t.speaker for t in turns))
    systems = {s: _system(h, s, tp, dialog.participants) for s in speakers}
    states = {s: _speaker_state(h, s, tp) for s in speakers}
    run = h.run
    room = h.atmosphere(tp).as_dict() if run.has("M10") else None
    position = h.position(tp).as_dict()
    return [{
        "messages": _messages(h, systems[t.speaker], turns, i),
        "metadata": {
            "run_id": run.id, "template": run.template, "mode": run.mode, "model": run.model,
            "training_safe": run.training_safe, "dialog_id": dialog.id, "timepoint_id": tp.id,
            "speaker": t.speaker, "turn_index": t.index, "dialog_move": t.move, "move_target": t.move_target,
            "emotional_tone": t.emotional_tone, "archetype": h.entities[t.speaker].archetype
            if t.speaker in h.entities else None,
            "speaker_state": states[t.speaker], "atmosphere": room, "position": position,
        },
    } for i, t in enumerate(turns)]


def chat_records(source: RunStore | RunHistory) -> list[dict]:
    h = RunHistory.of(source)
    return [record for tp in h.timepoints if tp.id in h.dialogs
            for record in _dialog_records(h, tp, h.dialogs[tp.id])]


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    return [write_jsonl(out_dir / "chat.jsonl", chat_records(store), compression)]
