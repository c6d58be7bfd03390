"""The dashboard: the run list at `/` and each run's page at `/runs/{run_id}` (the `html` exporter's page,
its plotly.js served from the installed plotly package), so it works with no network at all."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

import plotly
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ..export.page import run_page
from ..history import opened
from . import runs

HERE = Path(__file__).parent
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PER_PAGE = 50

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=HERE / "templates")


@router.get("/", response_class=HTMLResponse)
def run_list(request: Request, page: Annotated[int, Query(ge=1)] = 1, template: str | None = None,
             mode: str | None = None, model: str | None = None, status: str | None = None) -> HTMLResponse:
    home = request.app.state.home
    filters = {"template": template, "mode": mode, "model": model, "status": status}
    total, items = runs.page(home, filters, page, PER_PAGE)
    chosen = {k: v for k, v in filters.items() if v}
    pages = max(1, -(-total // PER_PAGE))

    def link(number: int) -> str:
        return "/?" + urlencode({**chosen, "page": number})

    return templates.TemplateResponse(request, "runs.html", {
        "items": items, "total": total, "page": page, "pages": pages, "filters": filters,
        "choices": runs.choices(home), "home": home,
        "previous": link(page - 1) if page > 1 else None, "next": link(page + 1) if page < pages else None})


def _version(run_dir: Path) -> tuple:
    """Changes whenever the run's store does (a run still going writes its WAL first)."""
    return tuple(_stamp(run_dir / name) for name in ("run.db", "run.db-wal"))


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:  # no WAL: the store is checkpointed and closed
        return None
    return stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=32)
def _page(run_dir: Path, version: tuple) -> str:
    """A run page is costly to build (the report refits ADPRS envelopes) and the same until its store
    changes: built once per store version."""
    with opened(run_dir) as h:
        return run_page(h, plotly_js_url="/static/plotly.min.js", home_url="/")


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_view(request: Request, run_id: str) -> HTMLResponse:
    run_dir = runs.run_dir(request.app.state.home, run_id)
    return HTMLResponse(_page(run_dir, _version(run_dir)))


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


def mount_static(app: FastAPI) -> None:
    """The dashboard's own files (its stylesheet), after the plotly.js route so that route wins."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
