"""Tabular exporters read back against the run store: Parquet, the standalone SQLite copy, CSV."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from timepoint.export import csv_tables, parquet, tables
from timepoint.export.lines import open_text
from timepoint.export.training import training_records
from timepoint.store import MIGRATIONS, TABLES, RunStore


@pytest.fixture(scope="module")
def out(store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tables")
    for exporter in (parquet, tables, csv_tables):
        exporter.export(store, out)
    return out


def _store_rows(store: RunStore, name: str) -> list[dict]:
    """What each Parquet table should hold, gathered independently of the exporter."""
    if name == "dialog_turns":
        cur = store.db.execute("SELECT t.*, d.timepoint_id FROM turns t JOIN dialogs d USING (run_id, dialog_id)"
                               " WHERE t.run_id = ? ORDER BY t.dialog_id, t.idx", (store.run_id,))
        return [dict(r) for r in cur]
    if name == "training_examples":
        return [{**r["metadata"], "run_id": store.run_id, "prompt": r["prompt"], "completion": r["completion"]}
                for r in training_records(store)]
    return store.rows(name, "id" if name == "exposure_events" else "rowid")


def _expected(row: dict, field: pa.Field):
    """The documented conversions: tensor vectors split out, JSON array text as lists, the rest as stored
    (training records already hold their mechanisms as a list)."""
    if field.name.startswith("tensor_"):
        return json.loads(row["tensor"])[field.name.removeprefix("tensor_")]
    value = row[field.name]
    return json.loads(value) if pa.types.is_list(field.type) and isinstance(value, str) else value


@pytest.mark.parametrize("name", list(parquet.SCHEMAS))
def test_parquet_reads_back_as_the_store(store, out, name):
    got = pq.read_table(out / "parquet" / f"{name}.parquet")
    schema = parquet.SCHEMAS[name]
    assert got.schema == schema
    rows = _store_rows(store, name)
    assert rows and got.num_rows == len(rows)
    for field in schema:
        assert got.column(field.name).to_pylist() == [_expected(r, field) for r in rows], field.name
    assert set(got.column("run_id").to_pylist()) == {store.run_id}


def test_sqlite_copy_stands_alone(store, out, tmp_path):
    moved = tmp_path / "elsewhere.sqlite"
    shutil.copy(out / "dataset.sqlite", moved)
    db = sqlite3.connect(moved)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        for table in TABLES:
            copied = db.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
            assert copied == [tuple(r.values()) for r in store.rows(table)], table
        assert db.execute("SELECT COUNT(*) FROM turns t JOIN dialogs d USING (run_id, dialog_id)").fetchone()[0] > 0
    finally:
        db.close()


def test_sqlite_copy_keeps_only_this_run(store, tmp_path):
    shared = tmp_path / "shared.db"
    with sqlite3.connect(shared) as db:
        store.db.backup(db)
    RunStore(shared, "another_run").begin_run(template="other")
    tables.export(RunStore(shared, store.run_id), tmp_path / "out")
    with sqlite3.connect(tmp_path / "out" / "dataset.sqlite") as db:
        assert db.execute("SELECT run_id FROM runs").fetchall() == [(store.run_id,)]


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open_text(path) as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames), list(reader)


def test_csv_reads_back_as_the_store(store, out):
    for table in csv_tables.TABLES:
        header, rows = _read_csv(out / "csv" / f"{table}.csv")
        expected = store.rows(table)
        assert expected and header == list(expected[0]), table
        assert rows == [{k: "" if v is None else str(v) for k, v in r.items()} for r in expected], table


@pytest.mark.parametrize("compression, suffix", [("gzip", ".gz"), ("bz2", ".bz2")])
def test_compressed_csv_reads_back_identical(store, out, tmp_path, compression, suffix):
    paths = csv_tables.export(store, tmp_path, compression)
    assert [p.name for p in paths] == [f"{t}.csv{suffix}" for t in csv_tables.TABLES]
    for table, path in zip(csv_tables.TABLES, paths):
        assert _read_csv(path) == _read_csv(out / "csv" / f"{table}.csv"), table
