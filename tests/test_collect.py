"""`collect`: many runs into one dataset. Provenance on every record, Parquet and the merged SQLite read
back against the JSONL and the stores, duplicates removed with their reasons, unfinished runs skipped."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from timepoint.collect import KINDS, collect, config_hash, near_duplicates, render
from timepoint.errors import UserError
from timepoint.export.lines import read_jsonl
from timepoint.store import TABLES

PROVENANCE = ("run_id", "template", "mode", "model", "seed", "variation", "config_hash")


def _content(record: dict) -> str:
    """A record less its metadata: what it says, whichever run it came from."""
    return json.dumps({k: v for k, v in record.items() if k != "metadata"}, sort_keys=True)


def _expected_provenance(run: dict) -> dict:
    """Provenance worked out independently from the run's row: sha256 of the canonical config less hydra/paths."""
    config = json.loads(run["config_json"])
    settings = {k: v for k, v in config.items() if k not in ("hydra", "paths")}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return {"run_id": run["run_id"], "template": run["template"], "mode": run["mode"], "model": run["model"],
            "seed": run["seed"], "variation": {k: config["variations"][k] for k in ("strategy", "index")},
            "config_hash": digest[:16]}


def _flat(record: dict) -> dict:
    return {**record["metadata"], **{k: v for k, v in record.items() if k != "metadata"}}


def test_two_seeds_collect_with_provenance_parquet_and_merged_sqlite(timepoint, tmp_path):
    sweep = tmp_path / "multirun" / "2026-01-01" / "12-00-00"
    runs = [timepoint("model=test", f"seed={seed}", run_dir=sweep / str(job)) for job, seed in enumerate((1, 2))]
    assert all(r.code == 0 for r in runs), runs[0].stderr
    out = tmp_path / "dataset"
    report = collect([tmp_path / "multirun"], out)
    assert [c["run_id"] for c in report["runs"]["collected"]] == [r.summary["id"] for r in runs]
    assert report["runs"]["skipped"] == []
    assert report == json.loads((out / "collect_report.json").read_text())
    assert render(report).startswith(f"collected 2 runs into {out} (0 skipped)")

    stores = [r.store() for r in runs]
    try:
        provenance = {s.run_id: _expected_provenance(s.run()) for s in stores}
        for name, kind in KINDS.items():
            owners: dict[str, set[str]] = {}
            for s in stores:
                for record in kind.records(s):
                    owners.setdefault(_content(record), set()).add(s.run_id)
            _check_kind(out, name, report["kinds"][name], owners, provenance)
        _check_merged(out / "dataset.sqlite", stores)
    finally:
        for s in stores:
            s.close()


def _check_kind(out: Path, name: str, summary: dict, owners: dict[str, set[str]], provenance: dict) -> None:
    """Every kept record carries its own run's provenance, and the Parquet file holds the JSONL's records."""
    records = read_jsonl(out / f"{name}.jsonl")
    assert records and summary["records_out"] == len(records)
    assert summary["records_in"] == sum(map(len, owners.values())) == summary["records_out"] + len(summary["removed"])
    for record in records:
        meta = record["metadata"]
        assert meta["run_id"] in owners[_content(record)]
        assert {k: meta[k] for k in PROVENANCE} == provenance[meta["run_id"]]
    first_run = next(iter(provenance))
    assert first_run in {r["metadata"]["run_id"] for r in records}  # the first seen of near-twins stays
    table = pq.read_table(out / f"{name}.parquet")
    schema = KINDS[name].schema
    assert table.schema == schema
    assert table.to_pylist() == [{f.name: _flat(r)[f.name] for f in schema} for r in records]
    assert summary["diversity"]["vocabulary"] > 0 and 0 < summary["diversity"]["mean_pairwise_similarity"] < 1


def _check_merged(path: Path, stores: list) -> None:
    """The merged file has each run's rows of every table, as many as its own store."""
    db = sqlite3.connect(path)
    try:
        for table in TABLES:
            for s in stores:
                got = db.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (s.run_id,)).fetchone()[0]
                assert got == len(s.rows(table)), (table, s.run_id)
        for table in ("runs", "entities", "timepoints", "turns", "exposure_events", "llm_calls"):
            assert {r[0] for r in db.execute(f"SELECT DISTINCT run_id FROM {table}")} == {s.run_id for s in stores}
    finally:
        db.close()


def test_the_same_run_collected_twice_keeps_only_the_first_copy(finished_run, tmp_path):
    for copy in ("a", "b"):
        shutil.copytree(finished_run.run_dir, tmp_path / "runs" / copy)
    report = collect([tmp_path / "runs"], tmp_path / "dataset")
    first, second = (str((tmp_path / "runs" / c).resolve()) for c in ("a", "b"))
    alone = collect([tmp_path / "runs" / "a"], tmp_path / "alone")
    for name, summary in report["kinds"].items():
        assert summary["records_out"] == alone["kinds"][name]["records_out"]
        removed_first = {r["record"]["record"] for r in summary["removed"] if r["record"]["run_dir"] == first}
        from_second = [r for r in summary["removed"] if r["record"]["run_dir"] == second]
        assert len(from_second) == report["runs"]["collected"][1]["records"][name] > 0
        for r in from_second:
            assert r["twin"]["run_dir"] == first and r["similarity"] >= 0.9
            if r["record"]["record"] not in removed_first:  # its own copy was kept: an exact duplicate of it
                assert r["reason"] == "exact duplicate" and r["similarity"] == 1.0
                assert r["twin"]["record"] == r["record"]["record"]
    assert report["runs"]["collected"][1]["same_run_as"] == first
    db = sqlite3.connect(tmp_path / "dataset" / "dataset.sqlite")
    assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    db.close()


BASE = ("Predict how the treasurer's state changes through the event below. The board meets at dawn in the "
        "harbour office to weigh the merger offer from the northern shipping line; the treasurer has seen the "
        "ledgers, knows the reserve fund is nearly empty, distrusts the chairman after the spring audit, and "
        "suspects the offer hides a clause that would dissolve the pension scheme within two years.")
OTHER = ("You are the lighthouse keeper, a quiet widower who counts the gulls each morning. A storm is coming "
         "from the west and the supply boat is late; answer the young radio operator who asks whether the lamp "
         "will hold through the night and whether anyone in the village remembers the wreck of 1931.")


def test_near_duplicate_is_removed_and_a_different_record_kept():
    variant = BASE.replace("harbour office", "harbour library")
    kept, dropped = near_duplicates([BASE, OTHER, variant, BASE], 0.9)
    assert kept == [0, 1]
    (i, twin, sim), (j, exact_twin, exact) = dropped
    assert (i, twin) == (2, 0) and 0.9 <= sim < 1.0
    assert (j, exact_twin, exact) == (3, 0, 1.0)
    assert near_duplicates([BASE, variant], 1.0) == ([0, 1], [])  # only exact duplicates reach 1.0


def test_config_hash_ignores_where_and_how_a_run_was_launched():
    config = {"seed": 1, "template": "board_meeting", "paths": {"home": "/home/a"}}
    assert config_hash(config) == config_hash({**config, "paths": {"home": "/b"}, "hydra": {"job": {"num": 3}}})
    assert config_hash(config) != config_hash({**config, "seed": 2})
    assert len(config_hash(config)) == 16


def test_a_run_that_did_not_complete_is_skipped_and_reported(timepoint, finished_run, tmp_path):
    stopped = timepoint("model=test", "budget=hard", "budget.max_calls=5")
    assert stopped.code == 3, stopped.stderr
    done = tmp_path / "done"
    shutil.copytree(finished_run.run_dir, done)
    report = collect([stopped.run_dir, done], tmp_path / "dataset")  # each source is itself a run dir
    [skipped] = report["runs"]["skipped"]
    assert skipped["run_id"] == stopped.summary["id"] and skipped["status"] == "budget_exhausted"
    assert "not completed" in skipped["reason"] and "budget.max_calls=5" in skipped["reason"]
    assert f"skipped {stopped.run_dir.resolve()}" in render(report)
    assert [c["run_id"] for c in report["runs"]["collected"]] == [finished_run.summary["id"]]
    for name in KINDS:
        assert {r["metadata"]["run_id"] for r in read_jsonl(tmp_path / "dataset" / f"{name}.jsonl")} == \
            {finished_run.summary["id"]}


def test_a_missing_source_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such directory"):
        collect([tmp_path / "nowhere"], tmp_path / "dataset")


def test_collected_records_still_validate(tmp_path, timepoint):
    import sys

    import jsonschema

    from timepoint import schemas
    from timepoint.cli import main
    run = timepoint("model=test")
    sys.argv = ["timepoint", "collect", str(run.run_dir), "--out", str(tmp_path / "dataset")]
    main()
    for kind in ("training", "chat"):
        validator = jsonschema.Draft202012Validator(schemas.load(kind))
        for record in read_jsonl(tmp_path / "dataset" / f"{kind}.jsonl"):
            validator.validate(record)
