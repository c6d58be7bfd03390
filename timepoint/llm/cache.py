"""The response cache: SQLite (WAL), shared by every run and process, keyed by the whole request.

Each entry keeps when it was written, when it was last served and the size of its answer, so
`timepoint cache prune` can drop what no run has used for a while.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ..migrations import migrate
from .request import Completion

# Numbered migrations (PRAGMA user_version), applied when a cache is opened.
MIGRATIONS = [
    # The table of every cache.db from before migrations: those files are at user_version 0 and have it.
    """
    CREATE TABLE IF NOT EXISTS responses (
        key TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        text TEXT NOT NULL,
        tokens_in INTEGER NOT NULL,
        tokens_out INTEGER NOT NULL,
        cost_usd REAL,
        created_at REAL NOT NULL
    )
    """,
    # Keys now cover the endpoint and the structured-output mode, so no request can address an older
    # entry again: they are dropped rather than kept as space that no hit will ever use.
    """
    DELETE FROM responses;
    ALTER TABLE responses ADD COLUMN used_at REAL NOT NULL DEFAULT 0;
    ALTER TABLE responses ADD COLUMN size_bytes INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX responses_used_at ON responses (used_at)
    """,
]


@dataclass
class CacheStats:
    entries: int
    answer_bytes: int
    oldest: float | None  # when the earliest entry was written (epoch seconds)
    newest: float | None
    by_model: list[tuple[str, str, int]]  # (provider, model, entries), most entries first


class ResponseCache:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            migrate(self._db, MIGRATIONS)
        except BaseException:
            self._db.close()
            raise

    def get(self, key: str) -> Completion | None:
        """The answer stored under `key`, marked as used now: prune keeps what runs still replay."""
        with self._db:
            rows = self._db.execute(
                "UPDATE responses SET used_at = ? WHERE key = ? RETURNING text, tokens_in, tokens_out, cost_usd",
                (time.time(), key),
            ).fetchall()
        return Completion(*rows[0]) if rows else None

    def put(self, key: str, provider: str, model: str, completion: Completion) -> None:
        now = time.time()
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, provider, model, text, tokens_in, tokens_out, cost_usd, "
                "created_at, used_at, size_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, provider, model, completion.text, completion.tokens_in, completion.tokens_out,
                 completion.cost_usd, now, now, len(completion.text.encode())),
            )

    def stats(self) -> CacheStats:
        entries, answer_bytes, oldest, newest = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size_bytes), 0), MIN(created_at), MAX(created_at) FROM responses"
        ).fetchone()
        by_model = self._db.execute(
            "SELECT provider, model, COUNT(*) AS n FROM responses GROUP BY provider, model "
            "ORDER BY n DESC, provider, model"
        ).fetchall()
        return CacheStats(entries, answer_bytes, oldest, newest, by_model)

    def disk_bytes(self) -> int:
        """The database file and its write-ahead log: what the cache takes on disk now."""
        files = (self.path, self.path.with_name(self.path.name + "-wal"))
        return sum(f.stat().st_size for f in files if f.is_file())

    def prune(self, before: float) -> int:
        """Drop the entries neither written nor served since `before` (epoch seconds); how many went."""
        return self._delete("WHERE used_at < ?", (before,))

    def clear(self) -> int:
        """Drop every entry; how many went."""
        return self._delete("", ())

    def _delete(self, where: str, params: tuple) -> int:
        """Delete, then VACUUM and truncate the log so the file shrinks: deleted rows alone free no disk."""
        with self._db:
            removed = self._db.execute(f"DELETE FROM responses {where}", params).rowcount
        self._db.execute("VACUUM")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return removed

    def close(self) -> None:
        self._db.close()
