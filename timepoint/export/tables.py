"""A standalone SQLite copy of one run: the same schema as the run store (built by its migrations),
holding only this run's rows, so it can be shared and queried without the store it came from."""

from __future__ import annotations

from pathlib import Path

from ..history import RunHistory
from ..store import TABLES, RunStore, insert_rows


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    """SQLite is a binary file of its own, so `compression` does not apply."""
    path = out_dir / "dataset.sqlite"
    path.unlink(missing_ok=True)  # a re-export starts afresh instead of colliding with its earlier rows
    copy, h = RunStore(path, store.run_id), RunHistory(store)
    try:
        with copy.step():
            for table in TABLES:
                insert_rows(copy.db, table, h.table(table))
        copy.db.execute("PRAGMA journal_mode=DELETE")  # one self-contained file: no -wal/-shm beside it
    finally:
        copy.close()
    return [path]
