"""The FastAPI app of `timepoint serve`: the JSON API, the dashboard and the OpenAI-compatible chat
endpoints over one home's catalog, behind an optional bearer token, with every error as JSON."""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException

from .. import __version__
from ..config import BudgetConfig
from ..errors import UserError
from ..llm.budget import Budget
from ..store import Catalog
from . import api, dashboard
from .openai_api import router as openai_router


def _error(status: int, message: str, headers: dict | None = None, request: Request | None = None) -> JSONResponse:
    """`{"error": message}`; under /v1/ the OpenAI shape, `{"error": {"message", "type", "code"}}`, which
    OpenAI clients read their error messages from."""
    if request is not None and request.url.path.startswith("/v1/"):
        body = {"error": {"message": message, "type": "invalid_request_error" if status < 500 else "api_error",
                          "code": status}}
    else:
        body = {"error": message}
    return JSONResponse(body, status_code=status, headers=headers)


def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None), request)


def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return _error(422, problems, request=request)


def _user_error(request: Request, exc: UserError) -> JSONResponse:
    return _error(400, str(exc), request=request)


def _server_error(request: Request, exc: Exception) -> JSONResponse:
    return _error(500, f"internal error: {type(exc).__name__}: {exc}", request=request)


def create_app(home: Path, *, token: str | None = None, budget_usd: float = 1.0) -> FastAPI:
    """The app over `<home>/catalog.db` (brought to the current schema once, here; read-only after).
    `budget_usd` is a hard cap shared by every chat request this process serves."""
    home = Path(home)
    if (home / "catalog.db").is_file():
        Catalog(home / "catalog.db").close()
    app = FastAPIOffline(title="Timepoint", version=__version__,
                         description="Runs of the catalog: their facts, reports, dialogs and datasets; characters as "
                                     "chat models.")
    app.state.home = home
    app.state.budget = Budget(BudgetConfig(kind="hard", max_cost_usd=budget_usd))
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(UserError, _user_error)
    app.add_exception_handler(Exception, _server_error)
    if token:
        expected = f"Bearer {token}".encode()

        @app.middleware("http")
        async def bearer(request: Request, call_next):
            given = request.headers.get("authorization", "").encode()
            if not secrets.compare_digest(given, expected):
                return _error(401, "a bearer token is required: send 'Authorization: Bearer <token>'",
                              {"WWW-Authenticate": "Bearer"}, request)
            return await call_next(request)

    app.include_router(api.router)
    app.include_router(openai_router)
    app.include_router(dashboard.router)
    dashboard.mount_static(app)
    return app
