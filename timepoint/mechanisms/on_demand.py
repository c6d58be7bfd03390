"""M9 on-demand entities: numbered crowd members mentioned in text become background characters.

A dialog or query that mentions "attendee #47" or "guest 3" refers to someone who is not in the
roster; rather than letting the reference dangle, the simulation adds a minimal background human.
Recognised forms (case-insensitive): attendee, person, guest, visitor, spectator, member and
participant followed by a number, with or without a space ("person12", "person 12").
Each normalises to `<base>_<n>`; the `#` form ("attendee #47", "guest #3") always becomes `attendee_<n>`;
leading zeros are dropped ("guest 03" is `guest_3`).
The number must follow the word, so "2024 members" and "members 2" are not references, and
neither are "salesperson 3" or "person12b".
"""

from __future__ import annotations

import re

ID = "M9"

_BASES = ("attendee", "person", "guest", "visitor", "spectator", "member", "participant")
NUMBERED_REFERENCE = re.compile(
    rf"\b(?P<base>{'|'.join(_BASES)})[ \t]*(?P<hash>#)?[ \t]*(?P<n>\d+)\b",
    re.IGNORECASE,
)


def numbered_references(text: str) -> list[str]:
    """Normalised ids of numbered people mentioned in text, de-duplicated in order, so each is created once."""
    found: list[str] = []
    for match in NUMBERED_REFERENCE.finditer(text):
        base = "attendee" if match["hash"] else match["base"].lower()
        ref = f"{base}_{int(match['n'])}"
        if ref not in found:
            found.append(ref)
    return found


def background_entity(ref: str, title: str) -> dict:
    """The minimal roster fields for an on-demand entity; everything else is filled in when it is queried."""
    return {
        "id": ref,
        "name": ref.replace("_", " ").title(),
        "type": "human",
        "role": "background",
        "initial_knowledge": [f"Present at {title}"],
    }
