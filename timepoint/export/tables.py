"""A standalone SQLite copy of one run: the same schema as the run store (built by its migrations),
holding only this run's rows, so it can be shared and queried without the store it came from."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..history import RunHistory
from ..store import TABLES, RunStore


def _copy_rows(h: RunHistory, db: sqlite3.Connection, table: str) -> None:
    rows = h.table(table)
    if rows:
        cols = list(rows[0])
        db.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                       [tuple(row.values()) for row in rows])


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    """SQLite is a binary file of its own, so `compression` does not apply."""
    path = out_dir / "dataset.sqlite"
    path.unlink(missing_ok=True)  # a re-export starts afresh instead of colliding with its earlier rows
    copy, h = RunStore(path, store.run_id), RunHistory(store)
    try:
        with copy.db:
            for table in TABLES:
                _copy_rows(h, copy.db, table)
        copy.db.execute("PRAGMA journal_mode=DELETE")  # one self-contained file: no -wal/-shm beside it
    finally:
        copy.close()
    return [path]
