"""Faults and kills, end to end: whole runs of the real command against the fault server on 127.0.0.1.

A FORWARD and a PORTAL run meet 20% of requests failing in every kind (500, 429 with Retry-After,
garbled body, dropped connection, an answer cut off mid-JSON, an answer that breaks the schema, an
empty answer) and still complete with records. A PORTAL run SIGKILLed midway and rerun with the same
command pays again only for the calls in flight at the kill, and writes the records an uninterrupted
run writes.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Literal

import pytest
from fault_server import ALL_FAULTS, FaultServer, body_hash, cut_off, empty, invalid, ok
from pydantic import BaseModel, Field, ValidationError

MAX_CONCURRENCY = 4   # model.max_concurrency: the calls one run can have in flight at once
TIMEOUT_S = 180       # per run; a run here takes a few seconds
PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy"}
FAULT_LABELS = {a.label for a in ALL_FAULTS}  # status 500, status 429, garbled, drop, cut_off, invalid, empty


def environment(home: Path) -> dict:
    """The run's environment: its own TIMEPOINT_HOME, no proxy between it and 127.0.0.1, no real key."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARS and k != "OPENAI_API_KEY"}
    env["TIMEPOINT_HOME"] = str(home)
    return env


def command(server: FaultServer, template: str, run_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "timepoint", f"template={template}", "model=openai_compatible",
            f"model.base_url={server.base_url}", "model.model_id=fault-model",
            "model.structured_output=json_schema", f"model.max_concurrency={MAX_CONCURRENCY}",
            "llm.backoff_s=0.01", "llm.backoff_max_s=0.05", *overrides, f"hydra.run.dir={run_dir}"]


def run(server: FaultServer, template: str, home: Path, run_dir: Path, *overrides: str) \
        -> subprocess.CompletedProcess:
    return subprocess.run(command(server, template, run_dir, *overrides), capture_output=True, text=True,
                          env=environment(home), cwd=run_dir.parent, timeout=TIMEOUT_S)


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def records(run_dir: Path, name: str) -> list[dict]:
    """A dataset's lines, less the run id each carries (the one thing two runs never share)."""
    run_id = summary(run_dir)["id"]
    lines = [json.loads(line) for line in (run_dir / name).open()]
    for line in lines:
        assert line["metadata"].pop("run_id") == run_id
    return lines


def query(run_dir: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(f"file:{run_dir / 'run.db'}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


class Reply(BaseModel):
    content: str = Field(max_length=80)
    tone: Literal["calm", "tense"]


def post(server: FaultServer, body: dict) -> dict:
    """One chat completion, straight over a socket (no proxy): its parsed answer."""
    request = urllib.request.Request(server.base_url + "/chat/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return json.loads(response.read())


def chat(seed: int, words: str = "Report on the harbour tonight.") -> dict:
    return {"model": "fault-model", "seed": seed, "max_tokens": 100,
            "messages": [{"role": "user", "content": words}],
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "answer", "schema": Reply.model_json_schema()}}}


def test_schema_answers_fit_the_request_and_faults_break_it_as_named():
    with FaultServer([ok(), cut_off(), invalid(), empty()], schema=True) as server:
        answers = [post(server, chat(7))["choices"][0] for _ in range(4)]
        again = post(server, chat(7))["choices"][0]["message"]["content"]
        other = post(server, chat(8))["choices"][0]["message"]["content"]
    fine, short, unfit, blank = answers
    assert Reply.model_validate_json(fine["message"]["content"]) and fine["finish_reason"] == "stop"
    assert again == fine["message"]["content"] != other  # deterministic per request body
    words = {w.strip(".").lower() for w in Reply.model_validate_json(fine["message"]["content"]).content.split()}
    assert words <= {"report", "harbour", "tonight"}  # filled from the last message's words
    assert short["finish_reason"] == "length"
    assert fine["message"]["content"].startswith(short["message"]["content"])
    with pytest.raises(json.JSONDecodeError):
        json.loads(short["message"]["content"])
    with pytest.raises(ValidationError):
        Reply.model_validate(json.loads(unfit["message"]["content"]))
    assert blank["message"]["content"] == ""
    assert server.counts == {"ok": 3, "cut_off": 1, "invalid": 1, "empty": 1}


def test_the_rate_draw_is_deterministic_per_body_and_occurrence():
    bodies = [chat(seed) for seed in range(300)] * 2  # every body twice: a second occurrence
    served = []
    for _ in range(2):
        with FaultServer(schema=True, rate=0.2, kinds=ALL_FAULTS, seed=11) as server:
            labels = [server._record(body, {}).label for body in bodies]  # the draw alone, no sockets
            served.append((labels, dict(server.counts)))
    assert served[0] == served[1]
    labels, counts = served[0]
    assert labels[:300] != labels[300:]  # transient faults are drawn afresh for a body seen again
    sticky = [i for i, label in enumerate(labels[:300]) if label in ("cut_off", "invalid")]
    assert sticky and all(labels[300 + i] == labels[i] for i in sticky)  # unusable answers stay
    assert set(counts) == {"ok"} | FAULT_LABELS
    assert 0.12 < 1 - counts["ok"] / len(bodies) < 0.28  # about 20%


def assert_survived(proc: subprocess.CompletedProcess, server: FaultServer, run_dir: Path) -> dict:
    """The run met every kind of fault, completed, wrote records, and left few gaps, each explained."""
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = summary(run_dir)
    assert run["status"] == "completed", run["error"]
    assert records(run_dir, "training.jsonl"), "no training records"
    missing = FAULT_LABELS - {label for label, n in server.counts.items() if n}
    assert not missing, f"fault kinds never served: {missing} ({dict(server.counts)})"
    failed = sum(n for label, n in server.counts.items() if label != "ok")
    assert failed >= 0.1 * len(server.requests), dict(server.counts)  # about 20% failed, not a handful
    (retried, unfit), = query(run_dir, "SELECT SUM(attempts > 1), SUM(error IS NOT NULL) FROM llm_calls")
    assert retried and unfit, "the run never retried a request or met an unusable answer"
    (calls,), = query(run_dir, "SELECT COUNT(*) FROM llm_calls")
    gaps = run["gaps"]
    assert len(gaps) == len(query(run_dir, "SELECT id FROM gaps"))
    assert all(g["unit"] and g["reason"] for g in gaps), gaps
    assert len(gaps) <= max(3, calls // 50), f"{len(gaps)} gaps in {calls} calls: {gaps}"
    if gaps:
        assert "gaps (work skipped" in proc.stdout
    print(f"\n{run['template']}: {len(server.requests)} requests {dict(server.counts)}; {calls} ledger rows, "
          f"{retried} retried, {unfit} unusable answers; {len(gaps)} gaps "
          f"{[g['unit'] for g in gaps]}")
    return run


def test_a_forward_run_completes_through_every_kind_of_fault(tmp_path):
    # One of each kind first, so every kind is met whatever the draw; then 20% of requests fail at random.
    opening = [action for fault in ALL_FAULTS for action in (fault, ok())]
    with FaultServer(opening, schema=True, rate=0.2, kinds=ALL_FAULTS, seed=3) as server:
        proc = run(server, "board_meeting", tmp_path / "home", tmp_path / "run")
    assert summary(tmp_path / "run")["mode"] == "forward"
    assert_survived(proc, server, tmp_path / "run")


def test_a_portal_run_completes_through_every_kind_of_fault(tmp_path):
    # Some 500 requests: at 20% over seven kinds, each kind is met many times over.
    with FaultServer(schema=True, rate=0.2, kinds=ALL_FAULTS, seed=1) as server:
        proc = run(server, "mars_mission_portal", tmp_path / "home", tmp_path / "run")
    run_summary = assert_survived(proc, server, tmp_path / "run")
    assert run_summary["mode"] == "portal"
    assert query(tmp_path / "run", "SELECT COUNT(*) FROM timelines WHERE timeline_id = 'main'") == [(1,)]


def ledger_rows(run_dir: Path) -> int:
    """Rows in the run's llm_calls table so far: 0 while the store does not exist yet or is busy."""
    try:
        return query(run_dir, "SELECT COUNT(*) FROM llm_calls")[0][0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.parametrize("rate", [0.0, 0.2], ids=["no-faults", "faults"])
def test_a_killed_portal_run_rerun_pays_only_for_the_calls_in_flight(tmp_path, rate):
    """SIGKILL a PORTAL run a third of the way through its calls, rerun the same command (same home, so
    the same response cache): the rerun resends only what the killed run had in flight, and its records
    equal an uninterrupted run's. The faults are deterministic per request body, so they keep equality:
    an unusable answer is cached and replayed like any other. A call that gives up on transient faults is
    not (the rerun asks it again, rightly), so the retries are raised until giving up does not happen."""
    template, delay = "mars_mission_portal", 0.01  # delay: the run takes some seconds, so the kill is midway
    retries = "llm.retries=10"  # at 20% faults, eleven transient ones in a row: about 1e-9 a call
    # The uninterrupted run, in a home and on a server of its own.
    with FaultServer(schema=True, rate=rate, seed=5, delay=delay) as server:
        whole = run(server, template, tmp_path / "home_whole", tmp_path / "whole", retries)
        whole_requests = len(server.requests)
        whole_bodies = {body_hash(b) for b in server.requests}
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert summary(tmp_path / "whole")["status"] == "completed"
    (whole_calls,), = query(tmp_path / "whole", "SELECT COUNT(*) FROM llm_calls")

    home, killed_dir = tmp_path / "home", tmp_path / "killed"
    with FaultServer(schema=True, rate=rate, seed=5, delay=delay) as server:
        proc = subprocess.Popen(command(server, template, killed_dir, retries), env=environment(home), cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while ledger_rows(killed_dir) < whole_calls // 3:
                assert proc.poll() is None, "the run ended before the kill"
                assert time.monotonic() < deadline, "the run made no progress"
                time.sleep(0.01)
            os.kill(proc.pid, signal.SIGKILL)
            in_flight = server.pending  # received and not yet answered when the run died
            assert proc.wait(timeout=10) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        # A request the kill tore in half reaches the server unparsed (None): never answered, not counted.
        torn = sum(body is None for body in server.requests)
        killed_bodies = {body_hash(b) for b in server.requests if b is not None}
        killed_requests = len(server.requests) - torn
        killed_rows = ledger_rows(killed_dir)
        assert not (killed_dir / "training.jsonl").exists()  # it really died midway

        rerun = run(server, template, home, tmp_path / "rerun", retries)
        rerun_bodies = {body_hash(b) for b in server.requests[killed_requests + torn:]}
        rerun_requests = len(server.requests) - killed_requests - torn
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert summary(tmp_path / "rerun")["status"] == "completed"

    # Between them the killed run and the rerun asked exactly what the uninterrupted run asked; the rerun
    # asked again only the calls whose answers the killed run had not cached: those in flight at the kill.
    assert killed_bodies | rerun_bodies == whole_bodies
    repaid = len(killed_bodies & rerun_bodies)
    extra_requests = killed_requests + rerun_requests - whole_requests
    (cached,), = query(tmp_path / "rerun", "SELECT SUM(cached) FROM llm_calls")
    print(f"\nkill ({rate=}): uninterrupted {whole_requests} requests / {whole_calls} ledger rows; killed at "
          f"{killed_rows} rows after {killed_requests} requests (+{torn} torn), {in_flight} pending at the "
          f"server; rerun {rerun_requests} requests, {cached} calls from the cache; repaid {repaid} calls, "
          f"{extra_requests} requests")
    assert repaid <= MAX_CONCURRENCY
    assert cached >= killed_rows - MAX_CONCURRENCY
    if rate == 0:  # no retries: one request a call
        assert extra_requests == repaid

    # Gaps alike (a PORTAL gap's unit names a state whose number follows call completion order: left out).
    gaps = [summary(tmp_path / name)["gaps"] for name in ("whole", "rerun")]
    assert [[(g["role"], g["timepoint"], g["unit"].split(" (")[0]) for g in run_gaps] for run_gaps in gaps] \
        == [[(g["role"], g["timepoint"], g["unit"].split(" (")[0]) for g in gaps[0]]] * 2, gaps
    for name in ("training.jsonl", "chat.jsonl"):
        rerun_records, whole_records = records(tmp_path / "rerun", name), records(tmp_path / "whole", name)
        if rerun_records != whole_records and unordered(rerun_records) == unordered(whole_records):
            pytest.xfail(f"{name}: the same records but for the order of knowledge items. Product bug: "
                         "after_dialog (timepoint/dialog/effects.py) runs record_outcome and each reflect "
                         "concurrently and each exposes its events when its call returns, so exposure order "
                         "follows call completion order, which a resumed (or replayed) run does not repeat")
        assert rerun_records == whole_records, name


def unordered(value):
    """`value` with every list, and the lines of every string (JSON inside strings parsed), sorted."""
    if isinstance(value, dict):
        return {k: unordered(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((unordered(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return sorted(value.splitlines())
        return ["json", unordered(parsed)] if isinstance(parsed, (dict, list)) else sorted(value.splitlines())
    return value
