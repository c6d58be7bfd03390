"""CSV tables for spreadsheets and quick analysis: one file per store table, this run's rows with a
header row; JSON columns stay JSON text and NULL is an empty cell. Honours `compression` like the
line formats (.csv.gz / .csv.bz2)."""

from __future__ import annotations

import csv
from pathlib import Path

from ..store import RunStore
from .lines import compressed, open_text

TABLES = ("entities", "timepoints", "dialogs", "turns", "exposure_events", "relationships", "entity_states",
          "timelines", "llm_calls")


def _columns(store: RunStore, table: str) -> list[str]:
    """From the schema rather than the rows, so an empty table still gets its header."""
    return [col[0] for col in store.db.execute(f"SELECT * FROM {table} LIMIT 0").description]


def _write(store: RunStore, table: str, path: Path) -> None:
    with open_text(path, "w") as f:
        writer = csv.DictWriter(f, fieldnames=_columns(store, table))
        writer.writeheader()
        writer.writerows(store.rows(table))


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    target = out_dir / "csv"
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for table in TABLES:
        paths.append(compressed(target / f"{table}.csv", compression))
        _write(store, table, paths[-1])
    return paths
