"""The nineteen mechanisms, by id. `mechanisms.enabled` in the config turns them on.

A mechanism that fires records a `mechanism_usage` row in the run store.
"""

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
