"""The JSONL datasets kept current while the run goes: after every timepoint of the main timeline
they are rewritten from the store, atomically, so a run killed at any moment keeps every record
it had made. The final export at the end of the run writes them once more, compressed if asked."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..store import RunStore
from ..world import Timepoint
from . import exporter

LIVE_FORMATS = ("training", "chat")


class LiveExports:
    def __init__(self, store: RunStore, run_dir: Path, formats: list[str]):
        self.store, self.run_dir = store, run_dir
        self.names = [n for n in formats if n in LIVE_FORMATS]
        self.staging = run_dir / ".partial"
        self.live: set[Path] = set()

    def refresh(self, tp: Timepoint) -> None:
        if tp.timeline_id != "main" or not self.names:
            return
        self.staging.mkdir(exist_ok=True)
        for name in self.names:
            for path in exporter(name)(self.store, self.staging, "none"):
                target = self.run_dir / path.name
                os.replace(path, target)
                self.live.add(target)

    def close(self, written: list[Path]) -> None:
        """The final export has run: drop live files it replaced with compressed ones."""
        for path in self.live - set(written):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.staging, ignore_errors=True)
