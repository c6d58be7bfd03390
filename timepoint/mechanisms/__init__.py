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


# Where each one happens: a plugin module here, or the named hook of the part of the run that owns it.
HOMES: dict[str, str] = {
    "M1": "mechanisms/fidelity.py (plugin; ADPRS gating in mechanisms/shadow.py)",
    "M2": "mechanisms/elevation.py, when `timepoint query` retrains an entity",
    "M3": "simulation.py Simulation.expose",
    "M4": "mechanisms/constraints.py (plugin)",
    "M5": "query.py and mechanisms/elevation.py",
    "M6": "mechanisms/population.py (at set-up) and mechanisms/compression.py (plugin, at the end)",
    "M7": "simulation.py Simulation.keep_timepoint",
    "M8": "mechanisms/embodiment.py (plugin)",
    "M9": "mechanisms/on_demand.py (plugin)",
    "M10": "mechanisms/atmosphere.py (plugin)",
    "M11": "dialog/graph.py",
    "M12": "modes/branching.py",
    "M13": "dialog/effects.py (trust from judged exchanges) and simulation.py Simulation.snapshot (alignment)",
    "M14": "mechanisms/circadian.py (plugin)",
    "M15": "dialog/effects.py (memory and rumination after a dialog)",
    "M16": "mechanisms/animism.py (plugin)",
    "M17": "modes/ (one module per temporal mode)",
    "M18": "llm/selection.py (a model chain per role)",
    "M19": "dialog/effects.py (knowledge extraction after a dialog)",
}
# A run is made of these: the dialog loop, a temporal mode, and the models chosen for its calls.
REQUIRED = ("M11", "M17", "M18")


def plugins(enabled: set[str]) -> list[ModuleType]:
    """The enabled plugin mechanisms, in the order their hooks run."""
    from . import animism, atmosphere, circadian, compression, constraints, embodiment, fidelity, on_demand, shadow
    order = (on_demand, fidelity, embodiment, circadian, atmosphere, animism, shadow, constraints, compression)
    return [m for m in order if m.ID in enabled]
