"""Numbered SQLite migrations, shared by the run store, the catalog and the response cache.

A database at `PRAGMA user_version` N gets migrations N.. applied in order, so a file written by an
older Timepoint is upgraded in place when it is opened.
"""

from __future__ import annotations

import sqlite3


def migrate(db: sqlite3.Connection, migrations: list[str]) -> None:
    """Apply the migrations a database lacks, each in one transaction. Each step takes the write lock
    first (BEGIN IMMEDIATE) and reads the version under it, so two processes opening a new file at
    once (a parallel sweep's catalog) never both create its tables: the second finds the work done."""
    while True:
        db.execute("BEGIN IMMEDIATE")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version >= len(migrations):
            db.execute("COMMIT")
            return
        try:
            for statement in migrations[version].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
