"""The model layer seen from a run: keys, licences, roles, replay, estimates, the call log, progress."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from test_bad_input import assert_refused

from timepoint.config import validate
from timepoint.llm.request import CallRecord
from timepoint.llm.selection import model_chains
from timepoint.paths import CONF_DIR
from timepoint.progress import Progress


def composed(*overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return validate(compose("config", overrides=list(overrides)))


def test_missing_key_stops_before_any_work_and_suggests_the_local_model(timepoint, monkeypatch):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    assert_refused(timepoint("model=deepseek"), "OPENROUTER_API_KEY", "model=local")


def test_for_training_data_refuses_a_restricted_licence(timepoint):
    assert_refused(timepoint("model=test", "roles.judge=llama_405b", "for_training_data=true"),
                   "llama_405b", "Llama 3.1 Community License", "deepseek")


def test_unknown_role_model_names_the_cards(timepoint):
    assert_refused(timepoint("model=test", "roles.dialog=gpt9"), "roles.dialog", "'gpt9'", "mixtral_8x7b")


def test_roles_default_to_the_run_model_and_fallbacks_follow():
    cfg = composed("model=test", "roles.judge=llama_405b", "roles.dialog=test", "fallback=[mixtral_8x7b,test]")
    chains = model_chains(cfg)
    assert [c.name for c in chains["judge"]] == ["llama_405b", "mixtral_8x7b", "test"]
    assert [c.name for c in chains["dialog"]] == ["test", "mixtral_8x7b"]
    assert [c.name for c in chains["extraction"]] == ["test", "mixtral_8x7b"]


def test_command_line_overrides_reach_the_run_model_in_every_role():
    cfg = composed("model=openai_compatible", "model.base_url=http://127.0.0.1:9/v1", "model.price_in=0.2",
                   "model.price_out=0.6")
    for chain in model_chains(cfg).values():
        assert (chain[0].base_url, chain[0].price_in, chain[0].price_out) == ("http://127.0.0.1:9/v1", 0.2, 0.6)


def test_replay_makes_no_call_and_gives_identical_exports(timepoint):
    first = timepoint("model=test", "template=board_meeting")
    again = timepoint("model=test", "template=board_meeting", "cache.mode=replay")
    assert first.code == again.code == 0, again.stderr
    db = sqlite3.connect(again.run_dir / "run.db")
    assert db.execute("SELECT COUNT(*) FROM llm_calls WHERE cached = 0").fetchone()[0] == 0
    assert again.summary["cost_usd"] == 0
    assert first.training_records() == again.training_records()


def test_replay_fails_fast_on_a_miss_and_describes_the_request(timepoint):
    result = timepoint("model=test", "seed=999", "cache.mode=replay")
    assert result.code == 1
    s = result.summary
    assert s["status"] == "failed" and "cache.mode=replay: no cached answer" in s["error"]
    assert s["calls"]["total"] == 0


@pytest.mark.parametrize("template", ["convergence_simple", "board_meeting", "jefferson_dinner", "mars_mission_portal",
                                      "castaway_colony_branching", "vc_pitch_branching", "agent4_elk_migration",
                                      "hound_shadow_directorial"])
def test_estimate_is_within_a_quarter_of_the_actual_call_count(timepoint, template):
    result = timepoint("model=test", f"template={template}", "cache.mode=off")
    s = result.summary
    assert abs(s["estimate"]["calls"] - s["calls"]["total"]) <= 0.25 * s["calls"]["total"], s
    assert f"estimated {s['estimate']['calls']} calls" in result.stdout


def test_estimate_command_calls_nothing_and_needs_no_key(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    script = Path(sys.executable).with_name("timepoint")
    proc = subprocess.run([str(script), "estimate", "template=board_meeting", "model=deepseek"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("board_meeting (forward) on deepseek:")
    assert "dialog" in proc.stdout and "$" in proc.stdout
    assert not (tmp_path / ".timepoint").exists()


def test_call_log_has_every_request_and_answer(timepoint):
    result = timepoint("model=test")
    lines = [json.loads(line) for line in (result.run_dir / "calls.jsonl").open()]
    db = sqlite3.connect(result.run_dir / "run.db")
    assert len(lines) == db.execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0]
    for entry in lines:
        assert entry["messages"][-1]["role"] == "user" and entry["answer"]
        assert entry["params"]["seed"] == 42


def test_progress_draws_a_line_on_a_terminal_and_stays_quiet_otherwise():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    tty, pipe = Terminal(), io.StringIO()
    for stream in (tty, pipe):
        p = Progress(max_cost_usd=0.5, stream=stream)
        p.set_step("tp_001 of 3")
        p.on_call(CallRecord(role="dialog", provider="openai", model="m", request_key="k", tokens_in=100,
                             tokens_out=20, cost_usd=0.0123))
        p.on_call(CallRecord(role="dialog", provider="openai", model="m", request_key="k", cached=True))
        p.close()
    assert "tp_001 of 3 | 2 calls (1 cached) | 120 tokens | $0.0123 of $0.50" in tty.getvalue()
    assert pipe.getvalue() == ""
