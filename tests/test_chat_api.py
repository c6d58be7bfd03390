"""Characters as chat models: the `openai` client against `timepoint serve` on 127.0.0.1, test model."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from serving import make_runs, served


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("chat_api")
    runs = make_runs(root, ["board_meeting", "mars_mission_portal"])
    with served(root / "home") as base:
        yield base, root, runs


def client(base: str, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, **kw)


def run_db(root: Path, run_id: str) -> sqlite3.Connection:
    run_dir = next(p.parent for p in root.glob("*/run.json") if json.loads(p.read_text())["id"] == run_id)
    return sqlite3.connect(run_dir / "run.db")


def test_every_entity_of_every_run_is_a_model(server):
    base, root, runs = server
    listed = {m.id for m in client(base).models.list()}
    for run_id in [r for ids in runs.values() for r in ids]:
        db = run_db(root, run_id)
        entities = [e for (e,) in db.execute("SELECT entity_id FROM entities")]
        assert entities and {f"{run_id}/{e}" for e in entities} <= listed
    assert len(listed) == sum(len([1 for _ in run_db(root, r).execute("SELECT 1 FROM entities")])
                              for ids in runs.values() for r in ids)


def test_a_character_answers_and_the_exchange_is_kept_with_its_call(server):
    base, root, runs = server
    run_id = runs["board_meeting"][0]
    db = run_db(root, run_id)
    entity = db.execute("SELECT entity_id FROM entities ORDER BY rowid").fetchone()[0]
    calls_before = db.execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0]
    answer = client(base).chat.completions.create(
        model=f"{run_id}/{entity}", user="tester",
        messages=[{"role": "user", "content": "How did the vote go?"}])
    text = answer.choices[0].message.content
    assert text and answer.model == f"{run_id}/{entity}" and answer.usage.completion_tokens > 0
    row = db.execute("SELECT session, channel, entity_id, as_of, question, answer FROM chats "
                     "ORDER BY id DESC").fetchone()
    assert row == ("tester", "api", entity, None, "How did the vote go?", text)
    call = db.execute("SELECT role, provider, tokens_out FROM llm_calls ORDER BY id DESC").fetchone()
    assert db.execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0] == calls_before + 1
    assert call[:2] == ("dialog", "test") and call[2] == answer.usage.completion_tokens


def test_a_streamed_answer_arrives_in_pieces_and_adds_up_to_what_is_kept(server):
    base, root, runs = server
    run_id = runs["mars_mission_portal"][0]
    db = run_db(root, run_id)
    entity = db.execute("SELECT entity_id FROM entities ORDER BY rowid").fetchone()[0]
    main = [t for (t,) in db.execute("SELECT timepoint_id FROM timepoints WHERE timeline_id = 'main' ORDER BY idx")]
    stream = client(base).chat.completions.create(
        model=f"{run_id}/{entity}@{main[1]}", stream=True,
        messages=[{"role": "system", "content": "Keep it short."},
                  {"role": "user", "content": "What do you know so far?"}])
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 3
    row = db.execute("SELECT as_of, answer FROM chats ORDER BY id DESC").fetchone()
    assert row == (main[1], "".join(pieces))


def test_unknown_characters_and_bad_requests_are_clear_errors(server):
    base, _, runs = server
    run_id = runs["board_meeting"][0]
    c = client(base)
    with pytest.raises(openai.NotFoundError, match="no entity 'nobody'"):
        c.chat.completions.create(model=f"{run_id}/nobody", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.NotFoundError, match="unknown run"):
        c.chat.completions.create(model="run_20990101_000000_deadbeef/x", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="names no character"):
        c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="end with a user message"):
        c.chat.completions.create(model=f"{run_id}/" + _first_entity(server, run_id),
                                  messages=[{"role": "assistant", "content": "hi"}])


def _first_entity(server, run_id: str) -> str:
    _, root, _ = server
    return run_db(root, run_id).execute("SELECT entity_id FROM entities ORDER BY rowid").fetchone()[0]


def test_the_spending_cap_refuses_chat_once_spent(tmp_path):
    """A priced card ($1,000 per million tokens out): the first answer fits the cap, the second cannot."""
    run_dir = tmp_path / "priced"
    made = subprocess.run([sys.executable, "-m", "timepoint", "model=test", "model.price_out=1000",
                           "template=board_meeting", f"hydra.run.dir={run_dir}"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600, env={**os.environ, "TIMEPOINT_HOME": str(tmp_path / "home")})
    assert made.returncode == 0, made.stderr[-2000:]
    run_id = json.loads((run_dir / "run.json").read_text())["id"]
    db = sqlite3.connect(run_dir / "run.db")
    entity = db.execute("SELECT entity_id FROM entities ORDER BY rowid").fetchone()[0]
    with served(tmp_path / "home", "--budget-usd", "0.07") as base:
        c = client(base)
        ask = {"model": f"{run_id}/{entity}", "max_tokens": 50}
        first = c.chat.completions.create(messages=[{"role": "user", "content": "First question?"}], **ask)
        assert first.choices[0].message.content
        with pytest.raises(openai.APIStatusError, match="--budget-usd") as refused:
            c.chat.completions.create(messages=[{"role": "user", "content": "Second question?"}], **ask)
        assert refused.value.status_code == 402
    assert db.execute("SELECT COUNT(*) FROM chats").fetchone()[0] == 1
