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
from typing import TYPE_CHECKING

from ..scenario import RosterEntity
from ..scene import join

if TYPE_CHECKING:
    from ..simulation import Simulation
    from ..world import Timepoint

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


def at_timepoint(sim: Simulation, tp: Timepoint) -> bool:
    """Numbered people an event mentions ("guest 3", "attendee #47") become background entities
    who are there and know only that they were."""
    new = [ref for ref in numbered_references(tp.event) if ref not in sim.entities]
    for ref in new:
        join(sim, RosterEntity(**background_entity(ref, sim.title)), {}, tp.timestamp, tp.id)
    tp.entities_present += [ref for ref in numbered_references(tp.event) if ref not in tp.entities_present]
    return bool(new)


def admit(sim: Simulation, tp: Timepoint, participants: list[str]) -> list[str]:
    """Entities made on demand are in the scene but do not talk: nothing is known of their voice."""
    declared = {e.id for e in sim.template.entities}
    return [p for p in participants if p in declared or not ON_DEMAND.match(p)]


ON_DEMAND = re.compile(rf"^({'|'.join(_BASES)})_\d+$")
