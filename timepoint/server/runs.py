"""The server's read side of the catalog: run id -> run directory (validated, one 404 for every unknown
run), pages of the run list filtered in SQL, and the dataset files of a run directory."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import HTTPException

RUN_ID = re.compile(r"^run_[0-9]{8}_[0-9]{6}_[0-9a-f]{8}$")  # engine.new_run_id
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
SIDECARS = ("-wal", "-shm", "-journal")  # SQLite's working files: not datasets, and changing under a reader
FILTERS = ("template", "mode", "model", "status")
LISTED = "run_id, template, mode, model, status, records, cost_usd, llm_calls, tokens, created_at, finished_at"


@contextmanager
def catalog(home: Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection to `<home>/catalog.db` (the server never writes it); None when this home
    has never run."""
    path = (Path(home) / "catalog.db").resolve()
    if not path.is_file():
        yield None
        return
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)
    db.row_factory = sqlite3.Row
    try:
        yield db
    finally:
        db.close()


def run_dir(home: Path, run_id: str) -> Path:
    """The directory of a cataloged run whose run.db still exists; anything else is a 404 naming the run."""
    if not RUN_ID.fullmatch(run_id):
        raise HTTPException(404, f"unknown run {run_id!r}: run ids look like run_YYYYMMDD_HHMMSS_xxxxxxxx")
    with catalog(home) as db:
        row = db.execute("SELECT run_dir FROM runs WHERE run_id = ?", (run_id,)).fetchone() if db else None
    if row is None or not row["run_dir"]:
        raise HTTPException(404, f"unknown run {run_id!r}: not in the catalog")
    path = Path(row["run_dir"])
    if not (path / "run.db").is_file():
        raise HTTPException(404, f"run {run_id!r}: its run.db is gone from {path}")
    return path


def page(home: Path, filters: dict[str, str | None], number: int, per_page: int) -> tuple[int, list[dict]]:
    """One page of the catalog, newest first, filtered and counted in SQL so a catalog of thousands of
    runs answers as fast as one of ten."""
    chosen = {k: v for k, v in filters.items() if k in FILTERS and v}
    where = " AND ".join(f"{k} = ?" for k in chosen) or "1"
    with catalog(home) as db:
        if db is None:
            return 0, []
        total = db.execute(f"SELECT COUNT(*) FROM runs WHERE {where}", list(chosen.values())).fetchone()[0]
        rows = db.execute(f"SELECT {LISTED} FROM runs WHERE {where} ORDER BY created_at DESC, run_id DESC "
                          "LIMIT ? OFFSET ?", [*chosen.values(), per_page, (number - 1) * per_page]).fetchall()
    return total, [dict(r) for r in rows]


def choices(home: Path) -> dict[str, list[str]]:
    """The values each filter takes in this catalog, for the dashboard's filter form."""
    with catalog(home) as db:
        return {k: [r[0] for r in db.execute(f"SELECT DISTINCT {k} FROM runs WHERE {k} IS NOT NULL ORDER BY 1")]
                if db else [] for k in FILTERS}


def template_runs(home: Path, template: str | None, limit: int) -> dict[str, list[Path]]:
    """Per template, the directories of its latest `limit` completed runs whose store still exists."""
    with catalog(home) as db:
        rows = db.execute("SELECT template, run_dir FROM runs WHERE status = 'completed' AND (? IS NULL OR "
                          "template = ?) ORDER BY template, created_at DESC, run_id DESC",
                          (template, template)).fetchall() if db else []
    out: dict[str, list[Path]] = {}
    for row in rows:
        dirs = out.setdefault(row["template"], [])
        if len(dirs) < limit and row["run_dir"] and (Path(row["run_dir"]) / "run.db").is_file():
            dirs.append(Path(row["run_dir"]))
    return out


def dataset_files(directory: Path) -> list[Path]:
    """The regular files directly in a run directory (no links, no subfolders, no SQLite working files)."""
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.is_symlink()
                  and FILE_NAME.fullmatch(p.name) and not p.name.endswith(SIDECARS))


def dataset_file(directory: Path, name: str) -> Path:
    """One of `dataset_files`, by exact name: a name is looked up among them, never joined into a path."""
    match = [p for p in dataset_files(directory) if p.name == name] if FILE_NAME.fullmatch(name) else []
    if not match:
        raise HTTPException(404, f"no dataset file {name!r} in this run")
    return match[0]
