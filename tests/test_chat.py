"""Talking with a character: `timepoint chat` and the chat core, on the test model."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys

import pytest
from conftest import RunResult

from timepoint.chat import character, messages, system_prompt
from timepoint.history import RunHistory
from timepoint.store import RunStore


@pytest.fixture(scope="module")
def finished_run(finished_run, tmp_path_factory) -> RunResult:
    """A copy of the shared finished run: chatting writes exchanges and calls into a run's store, and the
    shared one must stay as it was for the exporter tests."""
    copy = tmp_path_factory.mktemp("chat") / "run"
    shutil.copytree(finished_run.run_dir, copy)
    return RunResult(finished_run.code, finished_run.stdout, finished_run.stderr, copy)


@pytest.fixture(scope="module")
def store(finished_run) -> RunStore:
    opened = finished_run.store()
    yield opened
    opened.close()


def chat(finished_run, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TIMEPOINT_HOME": str(finished_run.run_dir.parent / "home")}
    return subprocess.run([sys.executable, "-m", "timepoint.cli", "chat", str(finished_run.run_dir), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def chats(finished_run) -> list[tuple]:
    db = sqlite3.connect(finished_run.run_dir / "run.db")
    try:
        return db.execute("SELECT session, channel, entity_id, as_of, question, answer, context FROM chats "
                          "ORDER BY id").fetchall()
    finally:
        db.close()


def test_batch_questions_are_answered_in_order_and_kept_in_the_store(finished_run, store):
    entity = next(iter(RunHistory(store).entities.values()))
    calls_before = store.db.execute("SELECT COUNT(*) FROM llm_calls WHERE role = 'dialog'").fetchone()[0]
    kept_before = len(chats(finished_run))
    done = chat(finished_run, entity.id, "--batch", "What did the board decide?", "Who do you trust?")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{entity.name}: ") and len(line) > len(entity.name) + 10
                                   for line in lines)
    kept = chats(finished_run)[kept_before:]
    assert [(k[1], k[2], k[3], k[4]) for k in kept] == [
        ("cli", entity.id, None, "What did the board decide?"), ("cli", entity.id, None, "Who do you trust?")]
    assert kept[0][0] == kept[1][0]  # one session
    assert [f"{entity.name}: {k[5]}" for k in kept] == lines
    calls_after = store.db.execute("SELECT COUNT(*) FROM llm_calls WHERE role = 'dialog'").fetchone()[0]
    assert calls_after == calls_before + 2  # each answer is a call in the run's ledger


def test_a_character_at_a_timepoint_knows_nothing_from_later(store):
    h = RunHistory(store)
    first, last = h.timepoints[0], h.timepoints[-1]
    for entity_id in h.entities:
        then, end = character(h, entity_id, first.id), character(h, entity_id, None)
        later = {tp.id for tp in h.timepoints[1:]}
        assert not [k for k in then.known if k.timepoint_id in later]
        assert {k.id for k in then.known} <= {k.id for k in end.known}
        assert then.state == h.state_at(entity_id, first) and end.state == h.state_at(entity_id, last)
        learned_later = [k for k in end.known if k.timepoint_id in later]
        if learned_later:
            item = learned_later[0].information
            assert item in system_prompt(end, None) or len(end.known) > 20
            assert item not in system_prompt(then, None)
            return
    raise AssertionError("no entity learned anything after the first timepoint; the check never ran")


def test_a_prompt_budget_cuts_knowledge_before_the_persona(store):
    h = RunHistory(store)
    c = character(h, next(iter(h.entities)))
    full, tight = system_prompt(c, None), system_prompt(c, 60)
    assert c.entity.name in tight and c.entity.description in tight
    assert "You know only this" in full and "You know only this" not in tight


def test_a_document_and_a_clients_system_message_reach_the_prompt_without_replacing_the_character(store):
    h = RunHistory(store)
    c = character(h, next(iter(h.entities)))
    sent = messages(c, [{"role": "system", "content": "You are a helpful assistant."},
                        {"role": "user", "content": "Read this."}], None, context="MEMO: quarterly losses of 12%")
    assert [m["role"] for m in sent] == ["system", "user"]
    assert sent[0]["content"].startswith(f"You are {c.entity.name}")
    assert "MEMO: quarterly losses of 12%" in sent[0]["content"]
    assert "You are a helpful assistant." in sent[0]["content"]


def test_context_file_is_kept_with_the_exchange(finished_run, store, tmp_path):
    entity = next(iter(RunHistory(store).entities))
    memo = tmp_path / "memo.txt"
    memo.write_text("The auditors found a second ledger.")
    done = chat(finished_run, entity, "--context", str(memo), "--batch", "What do you make of this memo?")
    assert done.returncode == 0, done.stderr
    assert chats(finished_run)[-1][6] == "The auditors found a second ledger."


def test_bad_chat_input_names_what_is_wrong(finished_run, store, tmp_path):
    h = RunHistory(store)
    entity = next(iter(h.entities))
    unknown = chat(finished_run, "nobody", "--batch", "hello")
    assert unknown.returncode == 2 and "no entity 'nobody'" in unknown.stderr and entity in unknown.stderr
    wrong_tp = chat(finished_run, entity, "--at", "tp_999", "--batch", "hello")
    assert wrong_tp.returncode == 2 and "no timepoint 'tp_999'" in wrong_tp.stderr
    assert h.timepoints[0].id in wrong_tp.stderr
    missing = chat(finished_run, entity, "--context", str(tmp_path / "absent.txt"), "--batch", "hello")
    assert missing.returncode == 2 and "--context: cannot read" in missing.stderr
    assert "Traceback" not in unknown.stderr + wrong_tp.stderr + missing.stderr
