"""Thin orchestration: world → mode → store → exporters, with the run's status kept honest."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from datetime import datetime
from pathlib import Path

from .config import ModeConfig, RunConfig
from .errors import BudgetExhausted
from .export import EXPORTERS
from .export.summary import run_summary, write_run_json
from .llm import Budget, ModelGateway, ReplayMiss, ResponseCache, StructuredOutputError
from .modes import MODES
from .scenario import Template
from .scene import set_up_scene
from .simulation import Simulation
from .store import Catalog, RunStore, now_iso

log = logging.getLogger(__name__)


def new_run_id() -> str:
    return f"run_{datetime.now():%Y%m%d_%H%M%S}_{secrets.token_hex(4)}"


async def _simulate(sim: Simulation) -> None:
    await set_up_scene(sim)
    await MODES[sim.mode](sim)


async def execute(cfg: RunConfig, template: Template, mode: ModeConfig, run_dir: Path, config_json: str) -> dict:
    """Run one simulation into `run_dir`; always leaves a store, exports and run.json behind."""
    run_id = new_run_id()
    home = Path(cfg.paths.home)
    store = RunStore(run_dir / "run.db", run_id)
    catalog = Catalog(home / "catalog.db")
    cache = ResponseCache(home / "cache.db")
    store.begin_run(template=cfg.template, world_id=template.world_id, title=template.title,
                    premise=template.premise, mode=mode.name, model=cfg.model.name,
                    model_license=cfg.model.license, training_safe=int(cfg.model.training_safe), seed=cfg.seed,
                    config_json=config_json)
    catalog.upsert(run_id=run_id, status="running", template=cfg.template, mode=mode.name, model=cfg.model.name,
                   created_at=store.run()["created_at"], run_dir=str(run_dir.resolve()))
    gateway = ModelGateway(cfg.model, cache, cfg.cache, Budget(cfg.budget), cfg.seed, on_call=store.record_call)
    sim = Simulation(cfg, template, mode.name, store, gateway)
    started = time.perf_counter()
    status, error = "completed", None
    try:
        await _simulate(sim)
    except BudgetExhausted as exc:
        status, error = "budget_exhausted", str(exc)
        log.warning("stopping: %s", exc)
    except (ReplayMiss, StructuredOutputError) as exc:
        status, error = "failed", str(exc)
        log.error("%s", exc)
    except (KeyboardInterrupt, asyncio.CancelledError):
        status, error = "interrupted", "interrupted by the user"
        raise
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        await gateway.close()
        cache.close()
        store.update_run(status=status, error=error, finished_at=now_iso(),
                         duration_s=round(time.perf_counter() - started, 3))
        written = {name: EXPORTERS[name](store, run_dir) for name in cfg.exporters.formats}
        training_path = written.get("training")
        examples = sum(1 for _ in training_path.open()) if training_path else 0
        summary = run_summary(store, examples)
        write_run_json(summary, run_dir)
        catalog.upsert(run_id=run_id, status=status, cost_usd=summary["cost_usd"], llm_calls=summary["calls"]["total"],
                       tokens=summary["tokens"]["in"] + summary["tokens"]["out"], finished_at=summary["finished_at"])
        catalog.close()
        store.close()
    return summary
