"""The HTTP provider against a real OpenAI-compatible server: llama_cpp.server on 127.0.0.1
serving the bundled SmolLM2 model."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("llama_cpp.server", reason="needs the embedded model extra: pip install -e '.[local,test]'")

from timepoint.config import BudgetConfig, ModelCard  # noqa: E402
from timepoint.dialog.graph import TurnDraft  # noqa: E402
from timepoint.llm import Budget, ModelGateway, ResponseCache  # noqa: E402
from timepoint.llm.providers.local import bundled_model_path  # noqa: E402

pytestmark = pytest.mark.embedded
SECRET = "sk-test-0123456789abcdef0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    log = log_path.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "timepoint.llm.llama_server", "--model", bundled_model_path(),
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "8192"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.5)
    else:
        proc.kill()
        log.close()
        pytest.fail(f"llama_cpp.server did not start:\n{log_path.read_text()[-2000:]}")
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def server_card(url: str) -> ModelCard:
    return ModelCard(name="openai_compatible", provider="openai", model_id="smollm2", base_url=url,
                     api_key_env=None, license="Apache-2.0", training_safe=True, context_length=8192,
                     max_output=1024, price_in=0.2, price_out=0.6, structured_output="grammar",
                     max_concurrency=2, timeout_s=120)


def test_server_answers_in_the_schema_with_usage_and_card_pricing(server_url, tmp_path):
    calls = []
    card = server_card(server_url)

    async def ask():
        gw = ModelGateway({"dialog": [card]}, ResponseCache(tmp_path / "c.db"), "off",
                          Budget(BudgetConfig(kind="unlimited")), seed=5, on_call=calls.append)
        try:
            return await gw.structured("dialog", [
                {"role": "system", "content": "You are Lin, a systems engineer. Answer in JSON."},
                {"role": "user", "content": "The O2 reading is 847 ppm. What do you say?"}], TurnDraft)
        finally:
            await gw.close()

    reply = asyncio.run(ask())
    assert isinstance(reply, TurnDraft) and reply.content.strip()
    call = calls[-1]
    assert call.provider == "openai" and call.tokens_in > 20 and call.tokens_out > 0 and call.error is None
    assert call.cost_usd == pytest.approx((call.tokens_in * 0.2 + call.tokens_out * 0.6) / 1e6)


def test_a_full_run_over_http_accounts_cost_and_never_writes_the_key(server_url, timepoint, home, monkeypatch):
    monkeypatch.setenv("TP_SECRET_KEY", SECRET)
    result = timepoint("model=openai_compatible", f"model.base_url={server_url}", "model.structured_output=grammar",
                       "model.price_in=0.2", "model.price_out=0.6", "model.api_key_env=TP_SECRET_KEY",
                       "model.prompt_budget=300", "dialog.min_turns=4", "dialog.max_turns=4")  # SmolLM2's budget
    assert result.code == 0, result.stderr
    s = result.summary
    assert s["status"] == "completed" and s["counts"]["dialogs"] >= 1 and s["counts"]["turns"] >= 2
    assert s["cost_usd"] == pytest.approx((s["tokens"]["in"] * 0.2 + s["tokens"]["out"] * 0.6) / 1e6, abs=1e-6)
    assert s["cost_usd"] > 0
    for folder in (result.run_dir, home):
        for path in Path(folder).rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in result.stdout + result.stderr


def test_server_streams_free_text_piece_by_piece(server_url, tmp_path):
    """What a character's streamed chat answer rides on: server-sent events from a real server."""
    calls = []

    async def talk():
        gw = ModelGateway({"dialog": [server_card(server_url)]}, ResponseCache(tmp_path / "c.db"), "off",
                          Budget(BudgetConfig(kind="unlimited")), seed=5, on_call=calls.append)
        try:
            return [piece async for piece in gw.stream("dialog", [
                {"role": "system", "content": "You are Lin, a systems engineer on a Mars mission."},
                {"role": "user", "content": "How are the CO2 scrubbers holding up?"}], max_tokens=48)]
        finally:
            await gw.close()

    pieces = asyncio.run(talk())
    assert len(pieces) > 3 and "".join(pieces).strip()
    (call,) = calls
    assert call.error is None and call.answer == "".join(pieces) and 0 < call.tokens_out <= 48
    assert call.cost_usd == pytest.approx((call.tokens_in * 0.2 + call.tokens_out * 0.6) / 1e6)
