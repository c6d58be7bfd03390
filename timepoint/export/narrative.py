"""`narrative.json`: the run's report as structured JSON (see `timepoint.analysis.narrative`)."""

from __future__ import annotations

import json
from pathlib import Path

from ..analysis.narrative import narrative
from ..store import RunStore


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    """Always plain text: one JSON document, read whole."""
    path = out_dir / "narrative.json"
    path.write_text(json.dumps(narrative(store), indent=2, ensure_ascii=False) + "\n", encoding="utf-8", newline="\n")
    return [path]
