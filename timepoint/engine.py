"""Thin orchestration: world → mode → store → exporters, with the run's status kept honest."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from omegaconf import DictConfig

from . import config as config_module
from .config import ModeConfig, ModelCard, RunConfig
from .errors import BudgetExhausted, SimulationError, UserError
from .estimate import Estimate, estimate
from .export import exporter, oxen
from .export.lines import read_jsonl
from .export.live import LiveExports
from .export.summary import run_summary, write_run_json
from .llm import AccountError, Budget, CallFailed, ModelGateway, ProviderDown, ReplayMiss, ResponseCache
from .llm.calllog import CallLog, redactor
from .llm.request import CallRecord
from .llm.retry import RetryPolicy
from .llm.selection import check_models, model_chains
from .mechanisms import MECHANISMS, shadow
from .modes import MODES
from .progress import Progress
from .scenario import Template, load_template
from .scene import plan as scene_plan
from .scene import set_up_scene
from .simulation import Simulation
from .store import Catalog, RunStore, now_iso
from .variations import vary

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """A validated run, ready to execute or estimate: nothing has been written or called yet."""

    config: RunConfig
    template: Template
    mode: ModeConfig
    chains: dict[str, list[ModelCard]]

    def estimate(self) -> Estimate:
        enabled = self.config.mechanisms.enabled
        calls = [c for c in MODES[self.mode.name].plan(self.template, self.mode, self.config.dialog)
                 if c.mechanism is None or c.mechanism in enabled]
        return estimate(scene_plan(self.template, enabled) + calls, self.chains)

    def gateway(self, cache: ResponseCache, on_call, providers: dict | None = None) -> ModelGateway:
        return gateway_for(self.config, self.chains, cache, on_call, providers)


def gateway_for(cfg: RunConfig, chains: dict[str, list[ModelCard]], cache: ResponseCache, on_call,
                providers: dict | None = None, budget: Budget | None = None) -> ModelGateway:
    """A run's door to its models: its chains, cache mode, budget (its own, or one shared by several
    sessions), seed, retries and limits."""
    return ModelGateway(chains, cache, cfg.cache.mode, budget or Budget(cfg.budget), cfg.seed, on_call,
                        RetryPolicy(cfg.llm.retries, cfg.llm.backoff_s, cfg.llm.backoff_max_s),
                        cfg.llm.max_concurrency, providers, cfg.llm.structured_attempts,
                        cfg.llm.max_consecutive_failures)


def prepare(cfg: DictConfig, need_keys: bool = True) -> Prepared:
    """Validate config, template, mode and models; any mistake is a UserError.
    `need_keys=False` for work that calls no model (estimates)."""
    run_cfg = config_module.validate(cfg)
    template = vary(load_template(run_cfg.template)[0], run_cfg.variations, run_cfg.seed)
    mode = run_cfg.mode or config_module.load_mode(template.mode)
    check = getattr(MODES[mode.name], "check", None)
    if check:
        check(template, mode)
    off = [m for m in getattr(MODES[mode.name], "NEEDS", ()) if m not in run_cfg.mechanisms.enabled]
    if off:
        raise UserError(f"mechanisms.enabled: mode={mode.name} is {MECHANISMS[off[0]]} ({off[0]}), which is not "
                        f"enabled; allowed: enable {off[0]} (e.g. mechanisms=all), or choose another mode")
    chains = model_chains(run_cfg)
    check_models(chains, run_cfg.for_training_data, need_keys)
    return Prepared(run_cfg, template, mode, chains)


@asynccontextmanager
async def model_session(cfg: RunConfig, chains: dict[str, list[ModelCard]], on_call,
                        providers: dict | None = None, budget: Budget | None = None) -> AsyncIterator[ModelGateway]:
    """A gateway for model work outside a run (queries, chat, authoring), with the run's cache and limits."""
    cache = ResponseCache(Path(cfg.paths.home) / "cache.db")
    gateway = gateway_for(cfg, chains, cache, on_call, providers, budget)
    try:
        yield gateway
    finally:
        await gateway.close()
        cache.close()


def new_run_id() -> str:
    return f"run_{datetime.now():%Y%m%d_%H%M%S}_{secrets.token_hex(4)}"


async def execute(run: Prepared, run_dir: Path, config_json: str) -> dict:
    """Run one simulation into `run_dir`; always leaves a store, exports and run.json behind."""
    cfg, template, mode = run.config, run.template, run.mode
    run_id = new_run_id()
    home = Path(cfg.paths.home)
    predicted = run.estimate()
    store = RunStore(run_dir / "run.db", run_id)
    catalog = Catalog(home / "catalog.db")
    cache = ResponseCache(home / "cache.db")
    store.begin_run(template=cfg.template, world_id=template.world_id, title=template.title,
                    premise=template.premise, mode=mode.name, model=cfg.model.name,
                    model_license=cfg.model.license, training_safe=int(cfg.model.training_safe), seed=cfg.seed,
                    config_json=config_json, est_calls=predicted.calls,
                    est_tokens=predicted.tokens_in + predicted.tokens_out, est_cost_usd=predicted.cost_usd)
    catalog.upsert(run_id=run_id, status="running", template=cfg.template, mode=mode.name, model=cfg.model.name,
                   created_at=store.run()["created_at"], run_dir=str(run_dir.resolve()))
    redact = redactor(c.api_key_env for chain in run.chains.values() for c in chain)
    calls = CallLog(run_dir / "calls.jsonl", redact)
    progress = Progress(cfg.budget.max_cost_usd)

    def on_call(call: CallRecord) -> None:
        call.error = redact(call.error)
        store.record_call(call)
        calls.write(call)
        progress.on_call(call)

    gateway = run.gateway(cache, on_call)
    sim = Simulation(cfg, template, mode, store, gateway, progress)
    live = LiveExports(store, run_dir, cfg.exporters.formats)
    sim.after_timepoint = live.refresh
    started = time.perf_counter()
    status, error = "completed", None
    try:
        await set_up_scene(sim)
        await MODES[mode.name].run(sim)
        sim.finish()
    except BudgetExhausted as exc:
        status, error = "budget_exhausted", str(exc)
        log.warning("stopping: %s", exc)
    except CallFailed as exc:  # a call the run cannot do without: its cast, its mode's plan
        status, error = "failed", redact(f"{exc}; the run cannot go on without this call. Rerun the same command "
                                         "to resume: finished calls come from the cache")
        log.error("%s", error)
    except (ReplayMiss, ProviderDown, AccountError, SimulationError) as exc:
        status, error = "failed", redact(str(exc))
        log.error("%s", error)
    except (KeyboardInterrupt, asyncio.CancelledError):
        status, error = "interrupted", "interrupted by the user"
        raise
    except Exception as exc:
        status, error = "failed", redact(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        progress.close()
        await gateway.close()
        cache.close()
        calls.close()
        store.update_run(status=status, error=error, finished_at=now_iso(),
                         duration_s=round(time.perf_counter() - started, 3))
        shadow_report = shadow.report(store.rows("timepoints", "idx"), store.rows("entity_states"))
        store.save_shadow(shadow_report["rows"], shadow_report["fits"])
        if shadow_report["total_evaluations"] or shadow_report["fits"]:
            (run_dir / "shadow_report.json").write_text(json.dumps(shadow_report, indent=2) + "\n")
        written, export_errors = export_all(store, run_dir, cfg.exporters.formats, cfg.exporters.compression)
        live.close([p for paths in written.values() for p in paths])
        examples = len(read_jsonl(written["training"][0])) if "training" in written else 0
        summary = run_summary(store, examples, export_errors)
        write_run_json(summary, run_dir)
        catalog.upsert(run_id=run_id, status=status, cost_usd=summary["cost_usd"], llm_calls=summary["calls"]["total"],
                       tokens=summary["tokens"]["in"] + summary["tokens"]["out"], finished_at=summary["finished_at"],
                       records=examples)
        catalog.close()
        store.close()
    if status == "completed":
        _upload(cfg, run_dir, run_id)
    return summary


def export_all(store: RunStore, run_dir: Path, formats: list[str], compression: str | None
               ) -> tuple[dict[str, list[Path]], dict[str, str]]:
    """Every chosen dataset, each on its own: a failing exporter is reported by name and costs only its
    own files, never the others or the run's status."""
    written, errors = {}, {}
    for name in formats:
        try:
            written[name] = exporter(name)(store, run_dir, compression)
        except Exception as exc:  # noqa: BLE001 - any exporter bug must not cost the other datasets
            errors[name] = f"{type(exc).__name__}: {exc}"
            log.error("exporter %s failed: %s", name, errors[name])
    return written, errors


def _upload(cfg: RunConfig, run_dir: Path, run_id: str) -> None:
    """An upload that fails loses nothing: the dataset is on disk, and the failure is said."""
    try:
        oxen.upload(cfg.exporters.oxen, run_dir, run_id)
    except httpx.HTTPError as exc:
        log.warning("oxen: upload failed, the dataset stays in %s: %s", run_dir, exc)


async def open_simulation(overrides: list[str], run_dir: Path, providers: dict | None = None) -> Simulation:
    """A simulation with its scene set up, in this process, for embedding and benchmarks: the same
    config, template and models as `python -m timepoint OVERRIDES`, writing its store in `run_dir`.
    `providers` replaces a model card's provider by name (a test double, a delayed one)."""
    import io

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from .__main__ import check_choices
    from .paths import CONF_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        run = prepare(compose("config", overrides=check_choices(overrides)))
    cfg = run.config
    store = RunStore(run_dir / "run.db", new_run_id())
    store.begin_run(template=cfg.template, mode=run.mode.name, model=cfg.model.name, seed=cfg.seed,
                    training_safe=int(cfg.model.training_safe))
    gateway = run.gateway(ResponseCache(Path(cfg.paths.home) / "cache.db"), store.record_call, providers)
    sim = Simulation(cfg, run.template, run.mode, store, gateway, Progress(None, io.StringIO()))
    await set_up_scene(sim)
    return sim
