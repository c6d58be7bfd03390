"""Shared fixtures: run the real command in a subprocess, with its run dir and home in tmp."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from timepoint.store import RunStore


@dataclass
class RunResult:
    code: int
    stdout: str
    stderr: str
    run_dir: Path

    @property
    def summary(self) -> dict:
        return json.loads((self.run_dir / "run.json").read_text())

    def training_records(self) -> list[dict]:
        """The training records, less the run id each carries (the one thing two runs never share)."""
        records = [json.loads(line) for line in (self.run_dir / "training.jsonl").open()]
        for r in records:
            assert r["metadata"].pop("run_id") == self.summary["id"]
        return records

    def store(self) -> RunStore:
        return RunStore(self.run_dir / "run.db")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """httpx honours proxy variables; the tests talk to 127.0.0.1 directly and nowhere else."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def timepoint(tmp_path: Path, home: Path):
    """`timepoint("model=test", ...)` runs `python -m timepoint` into a fresh run directory."""
    counter = iter(range(1000))

    def run(*overrides: str, run_dir: Path | None = None, timeout: float = 600) -> RunResult:
        run_dir = run_dir or tmp_path / f"run{next(counter)}"
        env = {**os.environ, "TIMEPOINT_HOME": str(home)}
        proc = subprocess.run(
            [sys.executable, "-m", "timepoint", *overrides, f"hydra.run.dir={run_dir}"],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=timeout)
        return RunResult(proc.returncode, proc.stdout, proc.stderr, run_dir)

    return run


async def new_simulation(tmp_path: Path, *overrides: str, providers: dict | None = None):
    """A simulation on the test model with its scene set up, in-process (call inside one event loop)."""
    from timepoint.engine import open_simulation
    return await open_simulation(["model=test", f"paths.home={tmp_path}", "cache.mode=off", *overrides], tmp_path,
                                 providers)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> RunResult:
    """One completed model=test run of board_meeting, shared read-only by the exporter tests.
    Exporters write into their own directories (--out / out_dir), never into this one."""
    tmp = tmp_path_factory.mktemp("finished")
    run_dir = tmp / "run"
    proc = subprocess.run([sys.executable, "-m", "timepoint", "model=test", "template=board_meeting",
                           f"hydra.run.dir={run_dir}"], capture_output=True, text=True, cwd=tmp,
                          env={**os.environ, "TIMEPOINT_HOME": str(tmp / "home")}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return RunResult(proc.returncode, proc.stdout, proc.stderr, run_dir)


@pytest.fixture(scope="session")
def store(finished_run) -> RunStore:
    """The finished run's store, opened once for the read-only exporter tests."""
    opened = finished_run.store()
    yield opened
    opened.close()
