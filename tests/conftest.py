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

    def store(self) -> RunStore:
        return RunStore(self.run_dir / "run.db")


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
    """A simulation with its scene set up, in-process, for engine-level tests (call inside one event loop)."""
    import io

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from timepoint.__main__ import check_choices
    from timepoint.engine import prepare
    from timepoint.llm import Budget, ModelGateway, ResponseCache
    from timepoint.paths import CONF_DIR
    from timepoint.progress import Progress
    from timepoint.scene import set_up_scene
    from timepoint.simulation import Simulation

    GlobalHydra.instance().clear()
    overrides = check_choices(["model=test", f"paths.home={tmp_path}", *overrides])
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        run = prepare(compose("config", overrides=overrides))
    store = RunStore(tmp_path / "run.db", "run_under_test")
    store.begin_run(template=run.config.template, mode=run.mode.name, model=run.config.model.name,
                    seed=run.config.seed, training_safe=1)
    gateway = ModelGateway(run.chains, ResponseCache(tmp_path / "cache.db"), "off", Budget(run.config.budget),
                           run.config.seed, store.record_call, providers=providers)
    sim = Simulation(run.config, run.template, run.mode, store, gateway, Progress(None, io.StringIO()))
    await set_up_scene(sim)
    return sim
