"""The JSON API over the catalog (`/api/...`, documented at /docs). Every run is read through the read
side (`RunHistory`), found through `runs.run_dir`, so each endpoint answers an unknown run the same way."""

from __future__ import annotations

import threading
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, PlainTextResponse

from ..__main__ import prepared
from ..analysis.narrative import mechanisms as narrative_mechanisms
from ..analysis.narrative import narrative, turn
from ..convergence import convergence
from ..export.fountain import screenplay
from ..export.markdown import report
from ..export.tdf import tdf_record
from ..history import RunHistory, opened
from ..mechanisms import HOMES, MECHANISMS, REQUIRED
from ..scenario import available_templates, load_template
from . import runs

router = APIRouter(prefix="/api", tags=["runs"])
_compose = threading.Lock()  # Hydra's global state: one composition at a time


def _home(request: Request) -> Path:
    return request.app.state.home


@router.get("/runs")
def list_runs(request: Request, page: Annotated[int, Query(ge=1)] = 1,
              per_page: Annotated[int, Query(ge=1, le=200)] = 50, template: str | None = None,
              mode: str | None = None, model: str | None = None, status: str | None = None) -> dict:
    """The catalog, newest first, a page at a time; filter by template, mode, model and status."""
    total, items = runs.page(_home(request), {"template": template, "mode": mode, "model": model,
                                              "status": status}, page, per_page)
    return {"total": total, "page": page, "per_page": per_page, "pages": -(-total // per_page), "items": items}


def _entity(h: RunHistory, entity_id: str) -> dict:
    e = h.entities[entity_id]
    return {"id": e.id, "name": e.name, "type": e.type, "role": e.role, "title": e.title, "traits": e.traits,
            "goals": e.goals, "resolution": e.resolution, "final": e.cognitive.model_dump(mode="json"),
            "knowledge": len(h.known_at_end(e.id))}


@router.get("/run/{run_id}")
def run(request: Request, run_id: str) -> dict:
    """One run: its facts, counts, timelines with their timepoints, and entities as they ended it."""
    with opened(runs.run_dir(_home(request), run_id)) as h:
        return {"run": asdict(h.run), "counts": h.counts(), "mechanisms": h.mechanisms_fired(),
                "timelines": [{**asdict(t), "timepoints": [asdict(tp) for tp in h.timeline(t.id)]}
                              for t in h.timelines.values()],
                "timepoints": [asdict(tp) for tp in h.timepoints],
                "entities": [_entity(h, eid) for eid in h.entities]}


@router.get("/narrative/{run_id}")
def run_narrative(request: Request, run_id: str) -> dict:
    """The run's report, as structured JSON and as the Markdown of the `markdown` exporter."""
    with opened(runs.run_dir(_home(request), run_id)) as h:
        return {"narrative": narrative(h), "markdown": report(h)}


@router.get("/screenplay/{run_id}", response_class=PlainTextResponse)
def run_screenplay(request: Request, run_id: str) -> str:
    """The main timeline as a Fountain screenplay."""
    with opened(runs.run_dir(_home(request), run_id)) as h:
        return screenplay(h)


def _state(h: RunHistory, entity_id: str, tp) -> dict | None:
    state = h.state(entity_id, tp)
    return None if state is None else {k: getattr(state.cognitive, k) for k in ("valence", "arousal", "energy")}


@router.get("/dialogs/{run_id}")
def dialogs(request: Request, run_id: str) -> list[dict]:
    """Every dialog turn by turn: speaker, move, tone, and the speaker's state going into the timepoint."""
    with opened(runs.run_dir(_home(request), run_id)) as h:
        out = []
        for d in h.dialogs.values():
            tp = h.timepoint(d.timepoint_id)
            out.append({
                "dialog_id": d.id, "timepoint_id": d.timepoint_id, "timeline_id": tp.timeline_id if tp else None,
                "timestamp": tp.timestamp if tp else None, "participants": d.participants, "summary": d.summary,
                "mood": d.mood, "ending": d.ending, "quality_score": d.quality_score,
                "quality_passed": d.quality_passed, "quality_checks": d.quality_checks,
                "voice_distinctiveness": d.voice_distinctiveness,
                "turns": [{**turn(h, t), "state": _state(h, t.speaker, tp) if tp else None} for t in d.turns]})
        return out


@router.get("/data-export/{run_id}")
def data_export(request: Request, run_id: str) -> dict:
    """The run's TDF record (what the `tdf` exporter writes)."""
    with opened(runs.run_dir(_home(request), run_id)) as h:
        return tdf_record(h)


@lru_cache(maxsize=None)
def _template(name: str, model: str) -> dict:
    """One template's facts and estimated cost on a model card (Hydra composes it: slow, so kept)."""
    t, _ = load_template(name)
    with _compose:
        est = prepared([f"template={name}", f"model={model}"]).estimate()
    return {"name": name, "title": t.title, "tier": t.tier, "mode": t.mode, "mechanisms": t.mechanisms,
            "entities": len(t.entities), "timepoints": t.timepoints,
            "estimate": {"model": model, "calls": est.calls, "tokens_in": est.tokens_in,
                         "tokens_out": est.tokens_out, "cost_usd": est.cost_usd}}


@router.get("/templates", tags=["catalog"])
def templates(model: str = "deepseek") -> list[dict]:
    """The scenario templates with tier, mode, mechanisms and estimated cost on a model card."""
    return [_template(name, model) for name in available_templates()]


@router.get("/mechanisms", tags=["catalog"])
def mechanisms(request: Request, run_id: str | None = None) -> list[dict]:
    """The nineteen mechanisms, what each does and where; with `run_id`, whether and how often each fired."""
    out = [{"id": m, "name": name, "where": HOMES[m], "required": m in REQUIRED} for m, name in MECHANISMS.items()]
    if run_id is None:
        return out
    with opened(runs.run_dir(_home(request), run_id)) as h:
        used = {u["id"]: u for u in narrative_mechanisms(h)}
        return [{**m, "enabled": h.run.has(m["id"]), "fired": m["id"] in used,
                 "uses": used.get(m["id"], {}).get("uses", 0), "hooks": sorted(used.get(m["id"], {}).get("hooks", []))}
                for m in out]


@lru_cache(maxsize=256)
def _convergence(run_dirs: tuple[Path, ...]) -> dict:
    result = convergence(list(run_dirs))
    return {k: result[k] for k in ("score", "grade", "causal", "knowledge", "outcome_similarity", "divergence")}


@router.get("/convergence-stats", tags=["catalog"])
def convergence_stats(request: Request, template: str | None = None,
                      runs_per_template: Annotated[int, Query(ge=2, le=50)] = 10) -> list[dict]:
    """Per template, how far its latest completed runs (up to `runs_per_template`) agree (see
    `timepoint convergence`); a template with fewer than two runs has nothing to compare."""
    out = []
    for name, dirs in runs.template_runs(_home(request), template, runs_per_template).items():
        stats = _convergence(tuple(dirs)) if len(dirs) >= 2 else None
        out.append({"template": name, "runs_compared": len(dirs), **(stats or {"score": None, "grade": None})})
    return out


@router.get("/runs/{run_id}/files", tags=["files"])
def files(request: Request, run_id: str) -> list[dict]:
    """The run's dataset files, each downloadable at `/api/runs/{run_id}/files/{name}`."""
    directory = runs.run_dir(_home(request), run_id)
    return [{"name": p.name, "bytes": p.stat().st_size, "url": f"/api/runs/{run_id}/files/{p.name}"}
            for p in runs.dataset_files(directory)]


@router.get("/runs/{run_id}/files/{name}", tags=["files"], response_class=FileResponse)
def file(request: Request, run_id: str, name: str) -> FileResponse:
    """One dataset file of the run, by its name in the listing (nothing outside the run directory)."""
    return FileResponse(runs.dataset_file(runs.run_dir(_home(request), run_id), name), filename=name)
