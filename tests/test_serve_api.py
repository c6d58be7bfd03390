"""`timepoint serve`'s JSON API, started as a user starts it, over a home of model=test runs: every endpoint
answers from the run's store what the exporters and the store say, unknown runs and bad paths are JSON 404s,
and off loopback nothing is served without the bearer token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
from serving import make_runs, served

from timepoint.mechanisms import MECHANISMS
from timepoint.store import Catalog, RunStore

UNKNOWN = "run_20000101_000000_0badc0de"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serve")
    make_runs(root, ["board_meeting", "board_meeting", "mars_mission_portal"])
    return root / "home"


@pytest.fixture(scope="module")
def catalog(home) -> dict[str, dict]:
    cat = Catalog(home / "catalog.db")
    try:
        return {r["run_id"]: r for r in cat.runs()}
    finally:
        cat.close()


@pytest.fixture(scope="module")
def api(home):
    with served(home) as base, httpx.Client(base_url=base, timeout=120) as client:
        yield client


def _run_of(catalog: dict, template: str) -> dict:
    return next(r for r in catalog.values() if r["template"] == template)


def test_run_list_pages_and_filters(api, catalog):
    everything = api.get("/api/runs").json()
    assert everything["total"] == 3 and {r["run_id"] for r in everything["items"]} == set(catalog)
    for item in everything["items"]:
        row = catalog[item["run_id"]]
        assert item["records"] == len(Path(row["run_dir"], "training.jsonl").read_text().splitlines()) > 0
        assert {k: item[k] for k in ("template", "mode", "model", "status", "cost_usd", "created_at")} == \
               {k: row[k] for k in ("template", "mode", "model", "status", "cost_usd", "created_at")}
    assert [r["created_at"] for r in everything["items"]] == sorted((r["created_at"] for r in everything["items"]),
                                                                    reverse=True)
    pages = [api.get("/api/runs", params={"per_page": 2, "page": n}).json() for n in (1, 2, 3)]
    assert [len(p["items"]) for p in pages] == [2, 1, 0] and pages[0]["pages"] == 2
    assert [r["run_id"] for p in pages for r in p["items"]] == [r["run_id"] for r in everything["items"]]
    portal = api.get("/api/runs", params={"mode": "portal", "model": "test", "status": "completed"}).json()
    assert portal["total"] == 1 and portal["items"][0]["template"] == "mars_mission_portal"
    assert api.get("/api/runs", params={"template": "board_meeting"}).json()["total"] == 2
    assert api.get("/api/runs", params={"status": "failed"}).json() == {"total": 0, "page": 1, "per_page": 50,
                                                                       "pages": 0, "items": []}
    too_many = api.get("/api/runs", params={"per_page": 201})
    assert too_many.status_code == 422 and "per_page" in too_many.json()["error"]


def test_run_facts_counts_timelines_entities(api, catalog):
    row = _run_of(catalog, "mars_mission_portal")
    body = api.get(f"/api/run/{row['run_id']}").json()
    store = RunStore(Path(row["run_dir"]) / "run.db")
    try:
        assert body["run"]["id"] == row["run_id"] and body["run"]["mode"] == "portal"
        assert body["counts"] == store.counts()
        assert {t["id"] for t in body["timelines"]} == {t["timeline_id"] for t in store.rows("timelines")}
        assert len(body["timelines"]) > 1  # PORTAL explores paths besides the chosen one
        assert sum(len(t["timepoints"]) for t in body["timelines"]) == len(store.rows("timepoints"))
        assert [e["id"] for e in body["entities"]] == [e["entity_id"] for e in store.rows("entities")]
        assert set(body["mechanisms"]["fired"]) == {u["mechanism"] for u in store.rows("mechanism_usage")} & set(
            body["mechanisms"]["enabled"])
    finally:
        store.close()


def test_narrative_json_and_markdown(api, catalog):
    row = _run_of(catalog, "mars_mission_portal")
    body = api.get(f"/api/narrative/{row['run_id']}").json()
    assert isinstance(body["narrative"], dict) and body["narrative"]
    assert body["markdown"] == Path(row["run_dir"], "report.md").read_text()


def test_screenplay_is_the_fountain_export(api, catalog):
    row = _run_of(catalog, "board_meeting")
    reply = api.get(f"/api/screenplay/{row['run_id']}")
    assert reply.headers["content-type"].startswith("text/plain")
    assert reply.text == Path(row["run_dir"], "screenplay.fountain").read_text()


def test_dialogs_turn_by_turn_with_state(api, catalog):
    row = _run_of(catalog, "board_meeting")
    dialogs = api.get(f"/api/dialogs/{row['run_id']}").json()
    store = RunStore(Path(row["run_dir"]) / "run.db")
    try:
        turns = store.rows("turns", "dialog_id, idx")
        states = {(s["entity_id"], s["timepoint_id"]): json.loads(s["cognitive"]) for s in store.rows("entity_states")}
        parents = {t["timepoint_id"]: t["causal_parent"] for t in store.rows("timepoints")}
    finally:
        store.close()
    served_turns = [(d["dialog_id"], t) for d in dialogs for t in d["turns"]]
    assert [(d, t["index"], t["speaker"], t["content"], t["move"], t["tone"]) for d, t in served_turns] == \
           [(t["dialog_id"], t["idx"], t["speaker"], t["content"], t["dialog_move"], t["emotional_tone"])
            for t in turns]
    for d in dialogs:
        parent = parents[d["timepoint_id"]]
        for turn in d["turns"]:  # as of the timepoint: the snapshot at the end of its causal parent (or the opening)
            snapshot = states[(turn["speaker"], parent or f"pre_{d['timepoint_id']}")]
            assert turn["state"] == {k: snapshot[k] for k in ("valence", "arousal", "energy")}
    assert all(d["quality_score"] is not None for d in dialogs)


def test_data_export_is_the_tdf_record(api, catalog):
    row = _run_of(catalog, "mars_mission_portal")
    assert api.get(f"/api/data-export/{row['run_id']}").json() == json.loads(
        Path(row["run_dir"], "run.tdf.json").read_text())


def test_templates_with_tier_mode_mechanisms_and_cost(api):
    templates = {t["name"]: t for t in api.get("/api/templates", params={"model": "deepseek"}).json()}
    portal = templates["mars_mission_portal"]
    assert portal["mode"] == "portal" and portal["tier"] in ("quick", "standard", "comprehensive")
    assert portal["mechanisms"] and set(portal["mechanisms"]) <= set(MECHANISMS)
    assert portal["estimate"]["model"] == "deepseek" and portal["estimate"]["cost_usd"] > 0
    assert portal["estimate"]["calls"] > 0
    unknown = api.get("/api/templates", params={"model": "no_such_card"})
    assert unknown.status_code == 400 and "no_such_card" in unknown.json()["error"]


def test_mechanisms_and_what_fired_in_a_run(api, catalog):
    listed = api.get("/api/mechanisms").json()
    assert [(m["id"], m["name"]) for m in listed] == list(MECHANISMS.items()) and len(listed) == 19
    assert all(m["where"] for m in listed)
    row = _run_of(catalog, "mars_mission_portal")
    store = RunStore(Path(row["run_dir"]) / "run.db")
    try:
        uses = Counter(u["mechanism"] for u in store.rows("mechanism_usage"))
    finally:
        store.close()
    fired = {m["id"]: m for m in api.get("/api/mechanisms", params={"run_id": row["run_id"]}).json()}
    assert {m: f["uses"] for m, f in fired.items() if f["uses"]} == dict(uses) and uses
    assert all(f["fired"] == (f["uses"] > 0) for f in fired.values())
    assert fired["M11"]["fired"] and fired["M11"]["enabled"]


def test_convergence_stats_per_template(api, catalog):
    stats = {s["template"]: s for s in api.get("/api/convergence-stats").json()}
    assert stats["board_meeting"]["runs_compared"] == 2
    assert 0 <= stats["board_meeting"]["score"] <= 1 and stats["board_meeting"]["grade"] in "ABCDF"
    assert stats["mars_mission_portal"] == {"template": "mars_mission_portal", "runs_compared": 1, "score": None,
                                            "grade": None}
    only = api.get("/api/convergence-stats", params={"template": "board_meeting"}).json()
    assert [s["template"] for s in only] == ["board_meeting"]


def test_every_dataset_file_downloads(api, catalog):
    row = _run_of(catalog, "board_meeting")
    run_dir = Path(row["run_dir"])
    listed = api.get(f"/api/runs/{row['run_id']}/files").json()
    names = {f["name"] for f in listed}
    assert {"run.db", "training.jsonl", "run.json", "report.md", "screenplay.fountain"} <= names
    assert names == {p.name for p in run_dir.iterdir() if p.is_file() and not p.name.endswith(("-wal", "-shm"))}
    for f in listed:
        reply = api.get(f["url"])
        assert reply.status_code == 200 and reply.content == (run_dir / f["name"]).read_bytes(), f["name"]


@pytest.mark.parametrize("path", [f"/api/run/{UNKNOWN}", f"/api/narrative/{UNKNOWN}", f"/api/screenplay/{UNKNOWN}",
                                  f"/api/dialogs/{UNKNOWN}", f"/api/data-export/{UNKNOWN}",
                                  f"/api/runs/{UNKNOWN}/files", f"/api/mechanisms?run_id={UNKNOWN}",
                                  f"/runs/{UNKNOWN}", "/api/run/not_a_run_id"])
def test_unknown_run_is_a_json_404(api, path):
    reply = api.get(path)
    assert reply.status_code == 404 and reply.headers["content-type"] == "application/json"
    assert reply.json()["error"] and "run" in reply.json()["error"]


def test_a_run_whose_store_is_gone_is_a_404(tmp_path, api, home, catalog):
    row = _run_of(catalog, "board_meeting")
    moved = tmp_path / "moved"
    Path(row["run_dir"]).rename(moved)
    try:
        reply = api.get(f"/api/run/{row['run_id']}")
    finally:
        moved.rename(row["run_dir"])
    assert reply.status_code == 404 and "run.db is gone" in reply.json()["error"]


def test_paths_outside_the_run_dir_are_refused(api, catalog):
    row = _run_of(catalog, "board_meeting")
    run_dir = Path(row["run_dir"])
    outside = run_dir.parent / "secret.txt"
    outside.write_text("not a dataset")
    (run_dir / "link.txt").symlink_to(outside)
    (run_dir / "sub").mkdir()
    (run_dir / "sub" / "inner.txt").write_text("not served either")
    try:
        base = f"/api/runs/{row['run_id']}/files/"
        assert {"link.txt", "sub"}.isdisjoint(f["name"] for f in api.get(base.rstrip("/")).json())
        for name in ["..%2Fsecret.txt", "..%252Fsecret.txt", "%2E%2E", "..", "%2Fetc%2Fpasswd", "link.txt",
                     "sub", "sub%2Finner.txt", ".%2Frun.json", "run.db-wal"]:
            reply = api.get(base + name)
            assert reply.status_code == 404 and reply.json()["error"], name
            assert b"not a dataset" not in reply.content and b"root:" not in reply.content
        for run_id in ["..%2F..%2Fetc", "%2Fetc%2Fpasswd", ".."]:
            assert api.get(f"/api/run/{run_id}").status_code == 404
    finally:
        (run_dir / "link.txt").unlink()
        (run_dir / "sub" / "inner.txt").unlink()
        (run_dir / "sub").rmdir()
        outside.unlink()


def test_openapi_docs(api):
    assert api.get("/docs").status_code == 200
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/api/runs", "/api/run/{run_id}", "/api/narrative/{run_id}", "/api/screenplay/{run_id}",
            "/api/dialogs/{run_id}", "/api/data-export/{run_id}", "/api/templates", "/api/mechanisms",
            "/api/convergence-stats", "/api/runs/{run_id}/files", "/api/runs/{run_id}/files/{name}"} <= set(paths)


def test_off_loopback_every_request_needs_the_token(home, catalog):
    run_id = _run_of(catalog, "board_meeting")["run_id"]
    with served(home, "--host", "0.0.0.0", env={"TIMEPOINT_SERVE_TOKEN": "s3cret"}, ready_status=401) as base:
        for path in ["/api/runs", f"/api/run/{run_id}", "/", f"/runs/{run_id}", "/static/plotly.min.js", "/docs",
                     "/openapi.json", "/v1/models"]:
            bare = httpx.get(base + path, timeout=60)
            assert bare.status_code == 401 and "bearer token" in str(bare.json()["error"]), path
            wrong = httpx.get(base + path, headers={"Authorization": "Bearer nope"}, timeout=60)
            assert wrong.status_code == 401, path
            right = httpx.get(base + path, headers={"Authorization": "Bearer s3cret"}, timeout=60)
            assert right.status_code == 200, path


def test_refuses_a_public_address_without_a_token(home):
    env = {k: v for k, v in os.environ.items() if k != "TIMEPOINT_SERVE_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "timepoint.cli", "serve", "--host", "0.0.0.0", "--home", str(home)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert "--token" in proc.stderr and "TIMEPOINT_SERVE_TOKEN" in proc.stderr
