"""M16 animism: which kinds of entity may speak, and how they speak.

The template's cast is who exists; its animism level (0–6) widens who takes part in a dialog
(reference §1, M16): humans from 0, animals from 1, buildings and objects from 2, abstractions
from 3, and every other type (any, kami, ai) from 4.
Non-human speakers do not talk like people; `speaking_mode` says how their turns are rendered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from ..simulation import Simulation
    from ..world import Timepoint

ID = "M16"

SpeakingMode = Literal["speech", "behavioural narration", "environmental narration", "collective consciousness"]

# The lowest animism level at which a type may take part in a dialog. The aliases are the other
# names the reference gives for each group; a type not listed counts as "other" (4).
DIALOG_THRESHOLD: Final[dict[str, int]] = {
    "human": 0, "person": 0, "character": 0,
    "animal": 1, "creature": 1,
    "building": 2, "object": 2, "environment": 2, "location": 2, "vehicle": 2,
    "abstract": 3, "concept": 3, "force": 3,
}
OTHER_THRESHOLD: Final = 4

# How each type's dialog turns are voiced:
#   human, ai          -> speech: ordinary first-person lines;
#   animal             -> behavioural narration: what it does (the dog circles the table, whines);
#   building, object   -> environmental narration: what the place or thing does (the floor creaks);
#   abstract, kami, any -> collective consciousness: a shared, impersonal voice (the market, the river spirit).
SPEAKING_MODE: Final[dict[str, SpeakingMode]] = {
    "human": "speech",
    "ai": "speech",
    "animal": "behavioural narration",
    "building": "environmental narration",
    "object": "environmental narration",
    "abstract": "collective consciousness",
    "kami": "collective consciousness",
    "any": "collective consciousness",
}

def may_speak(entity_type: str, animism_level: int) -> bool:
    """Whether an entity of this type is admitted to dialog, so low-animism runs keep objects silent."""
    return animism_level >= DIALOG_THRESHOLD.get(entity_type.lower(), OTHER_THRESHOLD)


def speaking_mode(entity_type: str) -> SpeakingMode:
    """How this type's turns are voiced, so a river is narrated rather than given lines; unknown → collective."""
    return SPEAKING_MODE.get(entity_type.lower(), "collective consciousness")


def level_of(sim: Simulation) -> int:
    """The template's animism level; unset, the level the declared cast needs to speak."""
    declared = sim.template.animism_level
    if declared is not None:
        return declared
    return max((DIALOG_THRESHOLD.get(e.type, OTHER_THRESHOLD) for e in sim.entities.values()), default=0)


def admit(sim: Simulation, tp: Timepoint, participants: list[str]) -> list[str]:
    """Only entities the animism level lets speak take part in dialog; the others stay in the scene.
    A non-human admitted gets its speaking mode, which its turns are written in."""
    level = level_of(sim)
    admitted = [p for p in participants if may_speak(sim.entities[p].type, level)]
    modes = {p: speaking_mode(sim.entities[p].type) for p in admitted if sim.entities[p].type != "human"}
    if modes:
        tp.metadata["speaking_modes"] = modes
        sim.fire(ID, "speaking_mode", tp.id)
    return admitted
