"""The JSONL datasets kept current while the run goes: after every timepoint of the main timeline
they are rewritten from the store, atomically, so a run killed at any moment keeps every record
it had made. The final export at the end of the run writes them once more, compressed if asked."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..store import RunStore
from ..world import Timepoint
from . import EXPORTERS

LIVE_FORMATS = ("training", "chat")


def live_exports(store: RunStore, run_dir: Path, formats: list[str]) -> Callable[[Timepoint], None]:
    names = [n for n in formats if n in LIVE_FORMATS]
    staging = run_dir / ".partial"

    def refresh(tp: Timepoint) -> None:
        if tp.timeline_id != "main" or not names:
            return
        staging.mkdir(exist_ok=True)
        for name in names:
            for path in EXPORTERS[name](store, staging, "none"):
                os.replace(path, run_dir / path.name)
    return refresh
