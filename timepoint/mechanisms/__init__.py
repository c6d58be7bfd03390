"""The nineteen mechanisms, by id. `mechanisms.enabled` in the config turns them on.

A mechanism that fires records a `mechanism_usage` row in the run store. Mechanisms that act on the
world as plugins are modules here with an `ID` and any of the hooks the simulation calls:

- `at_timepoint(sim, tp) -> bool` — before anyone lives through `tp`: move states, annotate
  `tp.metadata`; True when it changed something;
- `admit(sim, tp, participants) -> list[str]` — who may take part in `tp`'s dialog;
- `at_end(sim) -> bool` — the mode has finished: judge the whole run.
"""

from __future__ import annotations

from types import ModuleType

MECHANISMS: dict[str, str] = {
    "M1": "heterogeneous fidelity",
    "M2": "progressive training",
    "M3": "exposure events",
    "M4": "constraint enforcement",
    "M5": "query-driven lazy resolution",
    "M6": "TTM tensor compression",
    "M7": "causal temporal chains",
    "M8": "embodied states",
    "M9": "on-demand entities",
    "M10": "scene atmosphere",
    "M11": "dialog synthesis",
    "M12": "counterfactual branching",
    "M13": "relationships",
    "M14": "circadian patterns",
    "M15": "prospection and proception",
    "M16": "animism",
    "M17": "modal temporal causality",
    "M18": "model selection",
    "M19": "knowledge extraction",
}


def plugins(enabled: set[str]) -> list[ModuleType]:
    """The enabled plugin mechanisms, in the order their hooks run."""
    from . import animism, atmosphere, circadian, compression, constraints, embodiment, fidelity, on_demand, shadow
    order = (on_demand, fidelity, embodiment, circadian, atmosphere, animism, shadow, constraints, compression)
    return [m for m in order if m.ID in enabled]
