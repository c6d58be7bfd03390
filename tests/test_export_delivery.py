"""How datasets leave a run: kept current on disk while the run goes, exported later from a run's
store alone, and pushed to Oxen only when enabled with a key."""

from __future__ import annotations

import asyncio
import shutil
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import new_simulation

from timepoint.cli import main
from timepoint.export.lines import read_jsonl
from timepoint.export.live import LiveExports
from timepoint.export.training import training_records
from timepoint.modes import MODES


class Killed(Exception):
    pass


def test_an_interrupted_run_keeps_the_records_it_made(tmp_path):
    """Stop the run right after its second timepoint: training.jsonl already holds that transition."""
    async def go():
        sim = await new_simulation(tmp_path, "template=board_meeting")
        refresh = LiveExports(sim.store, tmp_path, ["training", "chat"]).refresh
        seen = []

        def after(tp):
            refresh(tp)
            seen.append(tp.id)
            if len(seen) == 2:
                raise Killed
        sim.after_timepoint = after
        with pytest.raises(Killed):
            await MODES["forward"].run(sim)
        return sim
    sim = asyncio.run(go())
    on_disk = read_jsonl(tmp_path / "training.jsonl")
    assert on_disk and on_disk == training_records(sim.store)
    assert {r["metadata"]["timepoint_id"] for r in on_disk} == {"tp_001"}
    assert (tmp_path / "chat.jsonl").exists()


class OxenHub(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, dict, bytes]] = []

    def _record(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        OxenHub.requests.append((self.command, self.path, dict(self.headers), body))
        self.send_response(409 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    do_POST = do_PUT = _record

    def log_message(self, *args):
        pass


@pytest.fixture
def hub():
    OxenHub.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), OxenHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def oxen(hub: str) -> list[str]:
    return ["model=test", "exporters.oxen.enabled=true", "exporters.oxen.repo=lab/sims", f"exporters.oxen.host={hub}"]


def test_oxen_upload_sends_the_dataset_with_the_key(timepoint, hub, monkeypatch):
    monkeypatch.setenv("OXEN_API_KEY", "secret-key")
    result = timepoint(*oxen(hub))
    assert result.code == 0, result.stderr
    run_id = result.summary["id"]
    methods = [(m, p) for m, p, _, _ in OxenHub.requests]
    assert methods[0] == ("POST", "/api/repos")                       # create, or 409: it exists
    puts = [r for r in OxenHub.requests if r[0] == "PUT"]
    assert {p for _, p, _, _ in puts} == {f"/api/repos/lab/sims/file/main/runs/{run_id}"}
    assert all(h["Authorization"] == "Bearer secret-key" for _, _, h, _ in OxenHub.requests)
    sent = b"".join(body for *_, body in puts)
    assert (result.run_dir / "training.jsonl").read_bytes() in sent
    assert b'filename="run.json"' in sent and b'filename="training.jsonl"' in sent
    assert "secret-key" not in (result.run_dir / "calls.jsonl").read_text()


def test_oxen_is_silent_without_the_key(timepoint, hub, monkeypatch):
    monkeypatch.delenv("OXEN_API_KEY", raising=False)
    result = timepoint(*oxen(hub))
    assert result.code == 0, result.stderr
    assert OxenHub.requests == []


def test_an_unreachable_hub_loses_nothing(timepoint, monkeypatch):
    monkeypatch.setenv("OXEN_API_KEY", "k")
    result = timepoint(*oxen("http://127.0.0.1:9"))
    assert result.code == 0 and result.summary["status"] == "completed"
    said = result.stdout + result.stderr + (result.run_dir / "timepoint.log").read_text()
    assert "oxen: upload failed" in said
    assert read_jsonl(result.run_dir / "training.jsonl")


def test_oxen_enabled_without_a_repo_is_refused(timepoint):
    result = timepoint("model=test", "exporters.oxen.enabled=true")
    assert result.code == 2 and "exporters.oxen.repo must be 'namespace/name'" in result.stderr


def test_export_works_from_a_copied_run_directory(finished_run, tmp_path, monkeypatch, capsys):
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    shutil.copy(finished_run.run_dir / "run.db", copy / "run.db")
    for fmt in ("training", "chat", "fountain"):
        monkeypatch.setattr(sys, "argv", ["timepoint", "export", str(copy), "--format", fmt,
                                          "--out", str(tmp_path / "out")])
        main()
    printed = capsys.readouterr().out.split()
    assert {p.rsplit("/", 1)[-1] for p in printed} >= {"training.jsonl", "chat.jsonl", "screenplay.fountain"}
    assert read_jsonl(tmp_path / "out" / "training.jsonl") == read_jsonl(finished_run.run_dir / "training.jsonl")
