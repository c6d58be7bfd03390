"""JSON Schemas (draft 2020-12) of the exported records, shipped inside the package so consumers
and tests validate against the same files: `load("training")`, `load("chat")`, `load("backward")`,
`load("counterfactual")`, `load("tdf")`."""

from __future__ import annotations

import json
from pathlib import Path


def load(name: str) -> dict:
    return json.loads((Path(__file__).parent / f"{name}.schema.json").read_text(encoding="utf-8"))
