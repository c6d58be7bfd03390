"""Chat JSONL: one OpenAI / TRL `messages` record per dialog turn, to fine-tune a character's voice.

The system message is what the speaker had to go on at that moment: who they are and how they talk,
the scene, what they knew and from whom, how they stood with the others. Earlier turns of the dialog
are the history (their own as assistant, the others' as user) and the turn itself is the answer.
Everything is read from the run store, so any past run can be exported again.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..store import RunStore
from .lines import write_jsonl
from .view import RunView

# Exposures a dialog itself makes at its timepoint (what was said, what it left on someone's mind):
# the speaker did not know them yet while speaking.
AFTER_DIALOG = {"told", "concern"}


def _name(v: RunView, entity_id: str) -> str:
    return v.entities[entity_id]["name"] if entity_id in v.entities else entity_id


def _bullets(items: list[str]) -> str:
    return "\n".join(f"- {item}" for item in items) or "- none"


def _persona(ent: dict) -> str:
    voice = json.loads(ent["voice_guide"])
    style = [f"{k.replace('_', ' ')}: {'; '.join(x) if isinstance(x, list) else x}" for k, x in voice.items()]
    return (f"You are {ent['name']}, {ent['title']}. {ent['description']}\n"
            f"Traits: {', '.join(json.loads(ent['traits']))}\n"
            f"Goals:\n{_bullets(json.loads(ent['goals']))}\n"
            f"Voice:\n{_bullets(style)}\n"
            f"How you speak:\n{_bullets(json.loads(ent['speech_examples']))}")


def _known(v: RunView, entity_id: str, tp: dict) -> list[dict]:
    """Exposures up to this timepoint, less those the dialog itself produced there."""
    return [e for e in v.known_by(entity_id, tp["idx"])
            if e["timepoint_id"] != tp["timepoint_id"] or e["event_type"] not in AFTER_DIALOG]


def _knowledge(v: RunView, entity_id: str, tp: dict) -> str:
    items = [f"{e['information']} ({e['event_type']}, from {_name(v, e['source'])}, confidence {e['confidence']:.1f})"
             for e in _known(v, entity_id, tp)]
    return f"=== WHAT YOU KNOW ===\n{_bullets(items)}"


def _relationships(v: RunView, rel_states: dict, entity_id: str, tp: dict, others: list[str]) -> str:
    """Trust and alignment as they stood going in: the state at the antecedent timepoint (none before the first)."""
    lines = []
    for other in others:
        pair = tuple(sorted((entity_id, other)))
        rel = v.relationships.get(pair)
        line = f"{_name(v, other)}: {rel['rel_type'] if rel else 'neutral'}"
        state = rel_states.get((*pair, tp["causal_parent"]))
        if state:
            line += (f", trust {state['trust']:.2f}, alignment {state['alignment']:.2f},"
                     f" {state['interactions']} interactions so far")
        lines.append(line)
    return f"=== RELATIONSHIPS ===\n{_bullets(lines)}"


def _system(v: RunView, rel_states: dict, speaker: str, tp: dict, participants: list[str]) -> str:
    present = ", ".join(f"{v.entities[e]['name']} ({v.entities[e]['title']})" for e in tp["entities_present"])
    return "\n\n".join([
        _persona(v.entities[speaker]),
        f"=== SCENE ===\n{tp['timestamp']}: {tp['event']}\nPresent: {present}",
        _knowledge(v, speaker, tp),
        _relationships(v, rel_states, speaker, tp, [p for p in participants if p != speaker]),
    ])


OPENING = "(The conversation begins.)"
GO_ON = "(The others wait for you to go on.)"


def _messages(v: RunView, system: str, turns: list[dict], i: int) -> list[dict]:
    """System, then user and assistant strictly alternating — what chat templates that enforce
    alternation accept: the others' consecutive lines merge into one user message, and a short cue
    stands in where the speaker opens the dialog or speaks twice running."""
    speaker = turns[i]["speaker"]
    history: list[dict] = [{"role": "user", "content": OPENING}]
    for t in turns[:i]:
        role = "assistant" if t["speaker"] == speaker else "user"
        text = t["content"] if role == "assistant" else f"{_name(v, t['speaker'])}: {t['content']}"
        if history[-1]["role"] == role:
            history[-1]["content"] = text if history[-1]["content"] == OPENING else \
                f"{history[-1]['content']}\n{text}"
        else:
            history.append({"role": role, "content": text})
    if history[-1]["role"] == "assistant":
        history.append({"role": "user", "content": GO_ON})
    return [{"role": "system", "content": system}, *history, {"role": "assistant", "content": turns[i]["content"]}]


def _dialog_records(v: RunView, rel_states: dict, tp: dict, dialog: dict) -> list[dict]:
    participants = json.loads(dialog["participants"])
    turns = v.turns.get(dialog["dialog_id"], [])
    systems = {s: _system(v, rel_states, s, tp, participants) for s in dict.fromkeys(t["speaker"] for t in turns)}
    run = v.run
    return [{
        "messages": _messages(v, systems[t["speaker"]], turns, i),
        "metadata": {
            "run_id": run["run_id"], "template": run["template"], "mode": run["mode"], "model": run["model"],
            "training_safe": bool(run["training_safe"]), "dialog_id": dialog["dialog_id"],
            "timepoint_id": tp["timepoint_id"], "speaker": t["speaker"], "turn_index": t["idx"],
            "dialog_move": t["dialog_move"], "emotional_tone": t["emotional_tone"],
        },
    } for i, t in enumerate(turns)]


def chat_records(store: RunStore) -> list[dict]:
    v = RunView(store)
    rel_states = {(r["entity_a"], r["entity_b"], r["timepoint_id"]): r for r in store.rows("relationship_states")}
    return [record for tp in v.timepoints if tp["timepoint_id"] in v.dialogs
            for record in _dialog_records(v, rel_states, tp, v.dialogs[tp["timepoint_id"]])]


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    return [write_jsonl(out_dir / "chat.jsonl", chat_records(store), compression)]
