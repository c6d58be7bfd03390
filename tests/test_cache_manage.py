"""A cache users can trust and manage: keys that tell endpoints and structured modes apart, a cache.db
from before migrations upgraded in place, and `timepoint cache stats|prune|clear` as a user runs them."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_gateway import GOOD, MESSAGES, Reply, Scripted

from timepoint import cli
from timepoint.__main__ import prepared
from timepoint.config import BudgetConfig, ModelCard
from timepoint.engine import model_session
from timepoint.llm import Budget, ModelGateway, ResponseCache
from timepoint.llm.cache import MIGRATIONS
from timepoint.llm.request import Completion


SERVER = ModelCard(name="server_a", provider="openai", model_id="llama-3-8b", base_url="http://127.0.0.1:9000/v1",
                   license="MIT", training_safe=True, context_length=4096, max_output=256,
                   structured_output="json_object")
EMBEDDED = ModelCard(name="gguf_a", provider="local", model_id="SmolLM2-135M-Instruct", path="/models/a.gguf",
                     license="Apache-2.0", training_safe=True, context_length=4096, max_output=256,
                     structured_output="grammar")


def ask(cache_path: Path, card: ModelCard, *answers: str, mode: str = "read_write") -> list:
    """One structured call through a real gateway on `card`, answered by `answers`; the requests it sent."""
    provider = Scripted(*answers)

    async def go():
        gateway = ModelGateway({"dialog": [card]}, ResponseCache(cache_path), mode,
                               Budget(BudgetConfig(kind="unlimited")), seed=7, on_call=lambda _: None,
                               providers={card.name: provider})
        try:
            assert (await gateway.structured("dialog", MESSAGES, Reply)).content == "Up four percent."
        finally:
            await gateway.close()
            gateway.cache.close()
    asyncio.run(go())
    return provider.requests


@pytest.mark.parametrize("card, change, shared", [
    (SERVER, {"base_url": "http://127.0.0.1:9001/v1"}, False),
    (SERVER, {"structured_output": "json_schema"}, False),
    (EMBEDDED, {"path": "/models/b.gguf"}, False),
    (SERVER, {"name": "server_a_renamed", "price_in": 3.0, "timeout_s": 30.0, "max_concurrency": 4}, True),
], ids=["another_endpoint", "another_structured_mode", "another_gguf", "same_model_other_settings"])
def test_the_key_tells_apart_what_can_answer_differently(tmp_path, card, change, shared):
    cache = tmp_path / "cache.db"
    assert len(ask(cache, card, GOOD)) == 1
    assert ask(cache, card, mode="replay") == []                   # the same request again is a hit
    other = card.model_copy(update=change)
    if shared:
        assert ask(cache, other, mode="replay") == []
    else:
        assert len(ask(cache, other, GOOD)) == 1
        assert ask(cache, other, mode="replay") == [], "each gets its own entry, replayed in turn"


def test_a_resample_is_the_same_request_at_any_endpoint(tmp_path):
    """Where a request goes is part of its cache address, not of what it asks: the same run against the
    same model served at another URL resamples with the same seeds."""
    urls = ["http://127.0.0.1:9000/v1", "http://127.0.0.1:9001/v1"]
    sent = [ask(tmp_path / f"cache{n}.db", SERVER.model_copy(update={"base_url": url}), "{}", GOOD)
            for n, url in enumerate(urls)]
    assert [r.seed for r in sent[0]] == [r.seed for r in sent[1]] and sent[0][0].seed != sent[0][1].seed
    assert sent[0][1].key() != sent[1][1].key()


OLD_SCHEMA = """CREATE TABLE responses (key TEXT PRIMARY KEY, provider TEXT NOT NULL, model TEXT NOT NULL,
    text TEXT NOT NULL, tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL, cost_usd REAL,
    created_at REAL NOT NULL)"""  # cache.db as Timepoint wrote it before numbered migrations


def test_a_cache_db_from_before_migrations_is_upgraded_in_place(tmp_path):
    path = tmp_path / "cache.db"
    old = sqlite3.connect(path)
    old.execute("PRAGMA journal_mode=WAL")
    with old:
        old.execute(OLD_SCHEMA)
        old.execute("INSERT INTO responses VALUES ('oldkey', 'openai', 'llama-3-8b', ?, 10, 5, NULL, ?)",
                    (GOOD, time.time()))
    old.close()

    cache = ResponseCache(path)
    try:
        assert cache.get("oldkey") is None, "an entry keyed the old way can never be addressed again: it is gone"
        assert cache.stats().entries == 0
    finally:
        cache.close()
    assert len(ask(path, SERVER, GOOD)) == 1                         # an upgraded cache writes ...
    assert ask(path, SERVER, mode="replay") == []                    # ... and serves, opened again
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    (created, used, size), = db.execute("SELECT created_at, used_at, size_bytes FROM responses").fetchall()
    assert used >= created > 0 and size == len(GOOD)
    db.close()


# --- timepoint cache, as a user runs it ----------------------------------------------------------------------

QUESTIONS = ["Who signed the harbour lease?", "Why is the tide late?", "What does the ledger show?",
             "Where did the cargo go?"]


def fill(home: Path, model_id: str, questions: list[str]) -> int:
    """Real gateway calls on model=test (under `model_id`) into the home's cache; how many answers it wrote."""
    run = prepared(["model=test", f"model.model_id={model_id}", f"paths.home={home}"])
    calls = []

    async def go():
        async with model_session(run.config, run.chains, calls.append) as gateway:
            for question in questions:
                await gateway.structured("dialog", [{"role": "user", "content": question}], Reply)
    asyncio.run(go())
    return sum(not c.cached for c in calls)


def cache_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TIMEPOINT_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "timepoint.cli", "cache", *args], capture_output=True, text=True,
                          env=env, cwd=home.parent, timeout=120)


def by_model(stats_output: str) -> dict[str, int]:
    return {model: int(n) for n, _, model in re.findall(r"^\s+(\d+)\s+(\S+)\s+(\S+)$", stats_output, re.M)}


def age(home: Path, model_id: str, days: float) -> None:
    """Make a model's entries look written and last used `days` ago."""
    db = sqlite3.connect(home / "cache.db")
    with db:
        then = time.time() - days * 86400
        db.execute("UPDATE responses SET created_at = ?, used_at = ? WHERE model = ?", (then, then, model_id))
    db.close()


def disk_bytes(home: Path) -> int:
    """cache.db and its write-ahead log."""
    return sum(p.stat().st_size for p in home.glob("cache.db*") if not p.name.endswith("-shm"))


def test_stats_prune_and_clear_through_the_cli(tmp_path):
    home = tmp_path / "home"
    written = {"model-a": fill(home, "model-a", QUESTIONS), "model-b": fill(home, "model-b", QUESTIONS[:2])}
    assert written == {"model-a": 4, "model-b": 2}

    stats = cache_cli(home, "stats")
    assert stats.returncode == 0, stats.stderr
    assert f"{home / 'cache.db'}: 6 entries" in stats.stdout and "on disk" in stats.stdout
    assert re.search(r"oldest written \d{4}-\d\d-\d\dT.*, newest \d{4}-\d\d-\d\dT", stats.stdout)
    assert by_model(stats.stdout) == written

    age(home, "model-a", days=40)
    fill(home, "model-a", QUESTIONS[:1])                 # replayed today: a hit keeps an old entry in use
    pruned = cache_cli(home, "prune", "--older-than", "30d")
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.startswith("pruned 3 entries") and "3 left" in pruned.stdout
    assert by_model(cache_cli(home, "stats").stdout) == {"model-a": 1, "model-b": 2}

    cleared = cache_cli(home, "clear")
    assert cleared.returncode == 0 and cleared.stdout.startswith("cleared 3 entries"), cleared
    assert ": 0 entries" in cache_cli(home, "stats").stdout
    assert fill(home, "model-a", QUESTIONS[:1]) == 1     # and the cache goes on working


def test_prune_and_clear_give_the_space_back(tmp_path):
    path = tmp_path / "cache.db"
    cache = ResponseCache(path)
    for n in range(200):
        cache.put(f"key{n}", "test", "model-a" if n % 2 else "model-b", Completion("x" * 2000, 10, 500))
    cache.close()
    age(tmp_path, "model-a", days=40)
    full = disk_bytes(tmp_path)
    cache = ResponseCache(path)
    try:
        assert cache.prune(time.time() - 30 * 86400) == 100 and cache.stats().entries == 100
        pruned = disk_bytes(tmp_path)
        assert pruned < 0.75 * full
        assert cache.clear() == 100 and disk_bytes(tmp_path) < 0.25 * pruned
    finally:
        cache.close()


REFUSAL = "is not a duration; allowed: a whole number above 0 and a unit, m (minutes), h (hours), d (days) or " \
          "w (weeks), e.g. 30d"


def test_a_bad_older_than_is_refused_naming_the_flag(tmp_path):
    home = tmp_path / "home"
    fill(home, "model-a", QUESTIONS[:1])
    result = cache_cli(home, "prune", "--older-than", "30x")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result
    assert f"argument --older-than: '30x' {REFUSAL}" in result.stderr
    assert ": 1 entries" in cache_cli(home, "stats").stdout, "nothing was pruned"


@pytest.mark.parametrize("value", ["30", "d", "-5d", "1.5h", "0d", "30 days", "3M"])
def test_every_malformed_duration_is_refused(value, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["timepoint", "cache", "prune", f"--older-than={value}"])
    with pytest.raises(SystemExit) as refused:
        cli.main()
    assert refused.value.code == 2 and f"argument --older-than: {value!r} {REFUSAL}" in capsys.readouterr().err


def test_durations_read_as_meant():
    assert [cli.duration(d) for d in ("90m", "12h", "30d", "2w")] == [5400, 43200, 2592000, 1209600]


def test_a_missing_or_unreadable_cache_is_a_message(tmp_path):
    home = tmp_path / "elsewhere"
    for action in (["stats"], ["prune", "--older-than", "12h"], ["clear"]):
        result = cache_cli(tmp_path / "home", *action, "--home", str(home))
        assert result.returncode == 0 and f"no cache at {home / 'cache.db'}" in result.stdout, result
    assert not home.exists(), "nothing is created where nothing was cached"
    home.mkdir()
    (home / "cache.db").write_text("not a database")
    result = cache_cli(home, "stats")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"error: cache: {home / 'cache.db'} is not a readable response cache" in result.stderr
