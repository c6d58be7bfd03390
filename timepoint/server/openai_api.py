"""Characters as chat models: the OpenAI chat API over the catalog's runs.

`GET /v1/models` lists every entity of every run as `RUN_ID/ENTITY_ID`; `POST /v1/chat/completions`
with such a model (or `RUN_ID/ENTITY_ID@TIMEPOINT_ID`) answers in character through `timepoint.chat`,
streamed as server-sent events when asked. The server's `--budget-usd` is one hard cap over every
request: once it is spent, a request is refused (402) before any model is called.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ..chat import character, parse_model, reply, run_config
from ..engine import model_session
from ..errors import BudgetExhausted, UserError
from ..history import RunHistory
from ..llm.errors import CallFailed, ReplayMiss
from ..llm.request import CallRecord
from ..llm.selection import model_chains
from ..store import open_run
from . import runs

router = APIRouter(tags=["characters (OpenAI chat API)"])


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def plain(self) -> dict:
        text = self.content if isinstance(self.content, str) else "\n".join(p.text for p in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class ChatRequest(BaseModel):
    """The fields of an OpenAI chat request a character answers to; others (tools, n...) are ignored."""
    model_config = ConfigDict(extra="ignore")
    model: str = Field(description="RUN_ID/ENTITY_ID or RUN_ID/ENTITY_ID@TIMEPOINT_ID, as listed by /v1/models")
    messages: Annotated[list[Message], Field(min_length=1, max_length=200)]
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    user: str | None = Field(None, max_length=200, description="kept as the exchange's session in the run's store")


@router.get("/v1/models")
def models(request: Request) -> dict:
    """Every entity of every catalogued run whose store is still there, as a chat model."""
    data = []
    with runs.catalog(request.app.state.home) as db:
        rows = db.execute("SELECT run_id, run_dir, created_at FROM runs ORDER BY created_at, run_id").fetchall() \
            if db else []
    for row in rows:
        path = Path(row["run_dir"] or "") / "run.db"
        if not path.is_file():
            continue
        store = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            entities = [r[0] for r in store.execute("SELECT entity_id FROM entities WHERE run_id = ? ORDER BY rowid",
                                                    (row["run_id"],))]
        except sqlite3.DatabaseError:
            continue
        finally:
            store.close()
        created = int(datetime.fromisoformat(row["created_at"]).timestamp()) if row["created_at"] else 0
        data += [{"id": f"{row['run_id']}/{e}", "object": "model", "created": created, "owned_by": "timepoint"}
                 for e in entities]
    return {"object": "list", "data": data}


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatRequest, request: Request):
    """An answer in character, whole or streamed; usage is the model call's own."""
    run_id, entity_id, at = parse_model(body.model)
    store = open_run(runs.run_dir(request.app.state.home, run_id))
    try:
        history = RunHistory(store)
        try:
            who = character(history, entity_id, at)
        except UserError as exc:
            raise HTTPException(404, f"model {body.model!r}: {exc}") from None
        cfg = run_config(history)
    except BaseException:
        store.close()
        raise
    calls: list[CallRecord] = []

    def on_call(call: CallRecord) -> None:
        calls.append(call)
        store.record_call(call)

    async def answer() -> AsyncIterator[str]:
        try:
            async with model_session(cfg, model_chains(cfg), on_call, budget=request.app.state.budget) as gateway:
                async for piece in reply(gateway, store, who, [m.plain() for m in body.messages],
                                         session=body.user or f"api-{secrets.token_hex(4)}", channel="api",
                                         temperature=body.temperature,
                                         max_tokens=body.max_completion_tokens or body.max_tokens):
                    yield piece
        except BudgetExhausted as exc:
            raise HTTPException(402, f"the server's spending cap is spent ({exc}); restart `timepoint serve` "
                                     "with a higher --budget-usd") from None
        except (CallFailed, ReplayMiss) as exc:
            raise HTTPException(502, f"the character's model gave no answer: {exc}") from None
        finally:
            store.close()

    completion_id = f"chatcmpl-{secrets.token_hex(12)}"
    created = int(time.time())
    pieces = answer()
    if not body.stream:
        text = "".join([piece async for piece in pieces])
        return {"id": completion_id, "object": "chat.completion", "created": created, "model": who.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": _usage(calls)}
    first = await anext(pieces, "")  # a refusal (budget, model down) is an error response, not a broken stream
    return StreamingResponse(_events(completion_id, created, who.model, first, pieces, calls),
                             media_type="text/event-stream")


def _usage(calls: list[CallRecord]) -> dict:
    tokens_in, tokens_out = sum(c.tokens_in for c in calls), sum(c.tokens_out for c in calls)
    return {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out}


async def _events(completion_id: str, created: int, model: str, first: str, rest: AsyncIterator[str],
                  calls: list[CallRecord]) -> AsyncIterator[str]:
    """`chat.completion.chunk` events as OpenAI sends them: the role, the text as it comes, the finish
    with usage, then [DONE]."""
    def event(delta: dict, finish: str | None = None, **extra) -> str:
        chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    if first:
        yield event({"content": first})
    try:
        async for piece in rest:
            yield event({"content": piece})
    except HTTPException as exc:  # headers are sent: the failure goes in the stream, as OpenAI does
        yield f"data: {json.dumps({'error': {'message': exc.detail, 'code': exc.status_code}})}\n\n"
        return
    yield event({}, "stop", usage=_usage(calls))
    yield "data: [DONE]\n\n"
