"""Fountain screenplay (https://fountain.io/syntax) of a run's main timeline.

One scene per timepoint: a heading from the run's location and the hour, the event as action,
characters introduced the first time they are present, then the dialog at that timepoint with
parentheticals from each turn's tone and move. Generated text is escaped so that no line is
misread as another element (an all-caps action line as a character cue, a leading '.' as a
heading, and so on). Everything is read from the run store.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..history import RunHistory, TimepointRecord, TurnRecord
from ..store import RunStore

# Lines Fountain reads as scene headings whatever their case (unless forced to action with '!').
HEADING_RE = re.compile(r"^(INT|EXT|EST|INT\.?/EXT|I/E)[ .]", re.IGNORECASE)
# First characters that make a line something other than action: forced elements, lyrics,
# transitions or centered text, sections, synopses and page breaks.
MARKERS = "!@~.>#="
# How each dialog move reads as a direction; the default move says nothing worth a parenthetical.
MOVE_DIRECTIONS = {
    "direct_statement": None,
    "deflection": "deflecting",
    "strategic_question": "probing",
    "alliance_signal": "conciliatory",
    "silence": "silent",
    "partial_disclosure": "guarded",
    "status_move": "pulling rank",
    "humor": "dryly",
}


def _inline(text: str | None) -> str:
    """One line of text with emphasis characters escaped (so `/*` cannot open a boneyard) and notes broken."""
    line = " ".join((text or "").split())
    return line.replace("*", "\\*").replace("_", "\\_").replace("[[", "[ [")


def _action(text: str) -> str:
    """An action paragraph, forced with '!' when Fountain would read it as another element."""
    line = _inline(text)
    shouty = line.upper() == line and any(c.isalpha() for c in line)
    if line[:1] in MARKERS or HEADING_RE.match(line) or shouty:
        return "!" + line
    return line


def _cue(name: str) -> str:
    """A character cue in caps, forced with '@' unless it is plain capital letters and spaces."""
    cue = _inline(name).upper()
    return cue if re.fullmatch(r"[A-Z]+( [A-Z]+)*", cue) else "@" + cue


def _name(h: RunHistory, entity_id: str) -> str:
    return h.name(entity_id)


def _title_page(h: RunHistory) -> list[str]:
    run = h.run
    return [
        f"Title: {_inline(run.title or run.template)}",
        "Credit: Simulated by",
        "Author: Timepoint",
        f"Draft date: {(run.created_at or '')[:10]}",
        "Notes:",
        f"    Run {_inline(run.id)}",
        f"    Template {_inline(run.template)}, mode {_inline(run.mode)}, model {_inline(run.model)}",
    ]


def _location(h: RunHistory) -> str:
    return " ".join((h.run.location or h.run.title or h.run.template or "").split())


def _heading(h: RunHistory, tp: TimepointRecord, number: int) -> str:
    """`INT. <PLACE> - DAY #n#`, the place being the location's first clause (the first scene
    describes the rest); a location that already reads as a heading is kept as written."""
    place = _inline(_location(h).split(",")[0]).upper()
    hour = tp.time.hour
    heading = f"{place if HEADING_RE.match(place) else 'INT. ' + place} - {'DAY' if 6 <= hour < 18 else 'NIGHT'}"
    return f"{heading} #{number}#"


def _when(tp: TimepointRecord) -> str:
    t = tp.time
    return f"{t:%A, %B} {t.day}, {t.year}, {t.hour % 12 or 12}:{t:%M} {'AM' if t.hour < 12 else 'PM'}."


def _introduction(h: RunHistory, entity_id: str) -> str:
    """NAME IN CAPS, title, and the first sentence of the description: how scripts introduce a character."""
    ent = h.entities.get(entity_id)
    intro = _name(h, entity_id).upper()
    if ent and ent.title:
        intro += ", " + ent.title.rstrip(".")
    description = " ".join((ent.description if ent else "").split())
    first_sentence = re.split(r"(?<=[.!?])\s", description, maxsplit=1)[0]
    return f"{intro}. {first_sentence}".strip()


def _parenthetical(h: RunHistory, turn: TurnRecord) -> str | None:
    """Tone, move and addressee, when they say more than 'neutral, plain statement'."""
    tone, move, target = turn.emotional_tone, turn.move, turn.move_target
    parts = [
        tone.lower() if tone and tone != "neutral" else None,
        MOVE_DIRECTIONS.get(move, move.replace("_", " ").lower()) if move else None,
        f"to {_name(h, target)}" if target else None,
    ]
    words = ", ".join(p for p in parts if p)
    return f"({_inline(words)})" if words else None


def _dialog_block(h: RunHistory, turn: TurnRecord) -> list[str]:
    paren = _parenthetical(h, turn)
    return [_cue(_name(h, turn.speaker)), *([paren] if paren else []), _inline(turn.content) or "..."]


def _scene(h: RunHistory, tp: TimepointRecord, number: int, introduced: set[str]) -> list[list[str]]:
    """The paragraphs of one timepoint; marks the characters it introduces."""
    dialog = h.dialogs.get(tp.id)
    turns = dialog.turns if dialog else []
    cast = list(dict.fromkeys([*tp.present, *(t.speaker for t in turns)]))
    new = [e for e in cast if e not in introduced]
    introduced.update(new)
    paragraphs = [[_heading(h, tp, number)], [_action(_when(tp))]]
    if number == 1 and "," in _location(h):
        paragraphs.append([_action(_location(h).rstrip(".") + ".")])
    paragraphs += [[_action(_introduction(h, e))] for e in new]
    paragraphs.append([_action(tp.event)])
    paragraphs += [_dialog_block(h, t) for t in turns]
    if dialog and dialog.summary:
        paragraphs.append([_action(dialog.summary)])
    return paragraphs


def screenplay(source: RunStore | RunHistory) -> str:
    h = RunHistory.of(source)
    paragraphs, introduced = [_title_page(h)], set()
    for number, tp in enumerate(h.timepoints, start=1):
        paragraphs += _scene(h, tp, number, introduced)
        paragraphs.append(["CUT TO:"] if number < len(h.timepoints) else ["> FADE OUT."])
    return "\n\n".join("\n".join(p) for p in paragraphs) + "\n"


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    """Always plain text: a screenplay is read whole, not streamed line by line."""
    path = out_dir / "screenplay.fountain"
    path.write_text(screenplay(store), encoding="utf-8", newline="\n")
    return [path]
