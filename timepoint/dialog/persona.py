"""Persona parameters: how a character's state sets the sampling of its own turn (reference §5.2).

The reference reads the penalties from behaviour slots that mean something else [quirk]; here the
frequency penalty follows openness (lexical variety) and the presence penalty follows risk
tolerance (novelty seeking), which keeps the reference's defaults (0.5, 0.3) for a neutral profile.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..numeric import clamp


@dataclass(frozen=True)
class PersonaParams:
    temperature: float
    top_p: float
    max_tokens: int
    frequency_penalty: float
    presence_penalty: float

    def as_dict(self) -> dict:
        return asdict(self)


def persona_params(arousal: float, energy: float, behavior: list[float], position: int, max_turns: int,
                   phi: float | None = None) -> PersonaParams:
    """`energy` in cognitive units (0–100+); `position` is the turn's index in the dialog."""
    a, e = clamp(arousal, 0, 1), max(0.0, energy) / 100
    temperature = clamp(0.7 * (0.6 + 0.6 * a) * (0.7 + 0.3 * e), 0.3, 1.2)
    top_p = clamp(1 - 0.25 * a, 0.7, 0.98)
    max_tokens = int(clamp(int(350 * (1 - 0.4 * position / max(1, max_turns)) * (0.4 + 0.6 * e)), 50, 500))
    if phi is not None:
        scale = 0.6 + 0.4 * phi
        temperature = max(0.3, temperature * scale)
        max_tokens = max(50, int(max_tokens * scale))
        top_p = max(0.7, top_p * (0.8 + 0.2 * phi))
    return PersonaParams(
        temperature=round(temperature, 4), top_p=round(top_p, 4), max_tokens=max_tokens,
        frequency_penalty=round(clamp(behavior[0], 0, 0.8), 4),
        presence_penalty=round(clamp(0.6 * behavior[5], 0, 0.6), 4),
    )
