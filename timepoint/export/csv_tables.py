"""CSV tables for spreadsheets and quick analysis: one file per store table, this run's rows with a
header row; JSON columns stay JSON text and NULL is an empty cell. Honours `compression` like the
line formats (.csv.gz / .csv.bz2)."""

from __future__ import annotations

import csv
from pathlib import Path

from ..history import RunHistory
from ..store import RunStore
from .lines import compressed, open_text

TABLES = ("entities", "timepoints", "dialogs", "turns", "exposure_events", "relationships", "entity_states",
          "timelines", "llm_calls")


def _write(h: RunHistory, table: str, path: Path) -> None:
    """The header from the schema rather than the rows, so an empty table still gets one."""
    with open_text(path, "w") as f:
        writer = csv.DictWriter(f, fieldnames=h.columns(table))
        writer.writeheader()
        writer.writerows(h.table(table))


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    target = out_dir / "csv"
    target.mkdir(parents=True, exist_ok=True)
    paths, h = [], RunHistory(store)
    for table in TABLES:
        paths.append(compressed(target / f"{table}.csv", compression))
        _write(h, table, paths[-1])
    return paths
