"""The response cache: SQLite (WAL), shared by every run and process, keyed by the whole request."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from .request import Completion

_SCHEMA = """
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
"""


class ResponseCache:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

    def get(self, key: str) -> Completion | None:
        row = self._db.execute(
            "SELECT text, tokens_in, tokens_out, cost_usd FROM responses WHERE key = ?", (key,)
        ).fetchone()
        return Completion(*row) if row else None

    def put(self, key: str, provider: str, model: str, completion: Completion) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, provider, model, text, tokens_in, tokens_out, cost_usd,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, provider, model, completion.text, completion.tokens_in, completion.tokens_out,
                 completion.cost_usd, time.time()),
            )

    def close(self) -> None:
        self._db.close()
