"""dialog.steering_horizon: one steering call plans k turns, the loop plays them, and steering plans
again early after a rejected turn, a silence or an end; the estimate counts the calls a run makes."""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3

import pytest
from conftest import new_simulation
from test_dialog_engine import opening
from test_schema_caps import uncapped

from timepoint.__main__ import prepared
from timepoint.dialog.graph import DialogEngine, plan_schema
from timepoint.dialog.structure import steering_calls
from timepoint.llm.providers.test import TestProvider
from timepoint.llm.request import Completion

SPOKEN = ("direct_statement", "strategic_question", "alliance_signal", "partial_disclosure", "status_move", "humor")


class Scripted(TestProvider):
    """The test model with steering scripted: `steer(n, horizon)` answers the n-th steering call as the
    planned turns and whether to end; `line(n)` may replace the n-th character line. Keeps what it planned."""

    def __init__(self, card, participants, steer, line=None):
        super().__init__(card)
        self.participants, self.steer, self.line = participants, steer, line
        self.plans: list[list[dict]] = []
        self.lines = 0

    async def complete(self, request):
        title = request.json_schema.get("title")
        if title in ("SteeringDecision", "SteeringPlan"):
            horizon = 1 if title == "SteeringDecision" else request.json_schema["properties"]["turns"]["maxItems"]
            turns, end = self.steer(len(self.plans) + 1, horizon)
            self.plans.append(turns)
            room = {"move_rationale": "why", "mood_shift": "maintain", "suppress_speaker": []}
            if horizon == 1:
                answer = {"next_speaker": turns[0]["speaker"], "dialog_move": turns[0]["dialog_move"],
                          "move_target": turns[0]["move_target"], **room, "end_dialog": end}
            else:
                answer = {"turns": turns, **room, "end_after": end}
            return Completion(json.dumps(answer), 10, 10)
        if title == "TurnDraft":
            self.lines += 1
            scripted = self.line and self.line(self.lines)
            if scripted:
                return Completion(json.dumps({"content": scripted, "emotional_tone": "tense",
                                              "knowledge_references": []}), 10, 10)
        return await super().complete(request)


def rotation(end=lambda n: False, silent_at=None):
    """Plans that go round the room in order (no one twice running) with a different move each turn;
    `end(n)`: whether the n-th plan ends the dialog; `silent_at`: (plan, step) of a silence."""
    def steer(participants):
        def answer(n, horizon):
            turns = []
            for i in range(horizon):
                g = (n - 1) * horizon + i
                turns.append({"speaker": participants[g % len(participants)],
                              "move_target": participants[(g + 1) % len(participants)],
                              "dialog_move": "silence" if (n, i) == silent_at else SPOKEN[g % len(SPOKEN)]})
            return turns, end(n)
        return answer
    return steer


def dialog(tmp_path, horizon, *overrides, steer=rotation(), line=None):
    """One dialog among the default template's three people; with dialog.max_turns=8 it runs 7 to 8 turns."""
    async def go():
        sim = await new_simulation(tmp_path, f"dialog.steering_horizon={horizon}", "dialog.min_turns=4", *overrides)
        participants = list(sim.entities)
        provider = Scripted(sim.gateway._models["test"].card, participants, steer(participants), line)
        sim.gateway._models["test"].provider = provider
        engine = DialogEngine(sim, opening(sim), participants)
        return engine.structure, await engine.run(), provider
    return asyncio.run(go())


def origin(turn):
    return turn.params["steering_plan"], turn.params["plan_step"]


@pytest.mark.parametrize("horizon", [1, 2, 3])
def test_one_steering_call_plans_k_turns_and_the_maximum_cuts_the_last_plan(tmp_path, horizon):
    structure, result, provider = dialog(tmp_path, horizon, "dialog.max_turns=8")
    assert structure.min_turns < len(result.turns) == structure.max_turns == 8
    assert len(provider.plans) == math.ceil(8 / horizon) == steering_calls(8, horizon) - (horizon == 1)


@pytest.mark.parametrize("horizon", [2, 3])
def test_each_turn_is_its_plan_s_turn(tmp_path, horizon):
    _, result, provider = dialog(tmp_path, horizon, "dialog.max_turns=8")
    assert [origin(t) for t in result.turns] == [(1 + i // horizon, i % horizon) for i in range(8)]
    for turn in result.turns:
        plan, step = origin(turn)
        planned = provider.plans[plan - 1][step]
        assert (turn.speaker, turn.dialog_move, turn.move_target) == \
            (planned["speaker"], planned["dialog_move"], planned["move_target"])


@pytest.mark.parametrize("rejections, origins", [(1, [(1, 0), (1, 1), (2, 0)]), (2, [(1, 0), (2, 0)])])
def test_a_rejected_turn_makes_steering_plan_again(tmp_path, rejections, origins):
    """The second line is a stage direction: resampled, and kept (one rejection) or dropped (two); either
    way the plan's third turn is not played and the next turn opens a new plan."""
    _, result, provider = dialog(tmp_path, 3, "dialog.max_turns=8",
                                 line=lambda n: "(sighs)" if 2 <= n < 2 + rejections else None)
    assert [origin(t) for t in result.turns[:len(origins)]] == origins
    assert result.quality_checks["degenerate_caught"] == rejections
    kept_from_first_plan = len(origins) - 1
    assert len(provider.plans) == 1 + math.ceil((len(result.turns) - kept_from_first_plan) / 3)


def test_a_silence_makes_steering_plan_again(tmp_path):
    _, result, provider = dialog(tmp_path, 3, "dialog.max_turns=8", steer=rotation(silent_at=(1, 1)))
    assert provider.plans[0][1]["dialog_move"] == "silence"
    assert [origin(t) for t in result.turns[:2]] == [(1, 0), (2, 0)] and len(result.turns) == 8


@pytest.mark.parametrize("horizon, turns", [(1, 7), (2, 8), (3, 9)])
def test_an_end_is_honoured_once_the_minimum_is_reached(tmp_path, horizon, turns):
    """Steering wants to end from its first call: the dialog ends with the plan that reaches the minimum
    (7 turns here), with no steering call after it; at horizon 1 the end is a call of its own."""
    structure, result, provider = dialog(tmp_path, horizon, "dialog.max_turns=10", steer=rotation(end=lambda n: True))
    assert structure.min_turns == 7 and len(result.turns) == turns < structure.max_turns
    assert len(provider.plans) == steering_calls(turns, horizon)


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_a_bad_horizon_is_refused_naming_the_key_and_the_value(timepoint, value):
    result = timepoint("model=test", f"dialog.steering_horizon={value}")
    said = result.stdout + result.stderr
    assert result.code != 0 and "Traceback" not in said
    assert "config key dialog.steering_horizon: Input should be" in said
    assert f"got {value!r}" in said if value == "two" else f"greater than or equal to 1; got {value}" in said


def test_the_plan_schema_is_capped():
    assert uncapped(plan_schema(["a", "b", "c", "d"], 3).model_json_schema()) == []


def test_the_estimate_counts_the_steering_calls_a_run_makes(timepoint, tmp_path):
    """board_meeting on the test model, whose plans now and then hold a silence and whose turn counts vary:
    at horizon 1 the estimate's steering calls are within a quarter of the run's, as the estimate's total
    is; above it each silence costs a replan the estimate cannot foresee (the test model falls silent in
    about 1 of 8 planned turns), so the run may need more, never far fewer; both fall with the horizon."""
    real, estimated = [], []
    for horizon in (1, 2, 3):
        overrides = ["model=test", "template=board_meeting", f"dialog.steering_horizon={horizon}"]
        result = timepoint(*overrides, "cache.mode=off")
        assert result.code == 0, result.stderr
        db = sqlite3.connect(result.run_dir / "run.db")
        real.append(db.execute("SELECT COUNT(*) FROM llm_calls WHERE role = 'steering'").fetchone()[0])
        estimated.append(prepared([*overrides, f"paths.home={tmp_path}"]).estimate().by_role["steering"])
    assert abs(estimated[0] - real[0]) <= 0.25 * real[0], (estimated, real)
    assert all(0.75 * e <= r <= 1.6 * e for e, r in zip(estimated[1:], real[1:])), (estimated, real)
    assert real[0] > real[1] > real[2] and estimated[0] > estimated[1] > estimated[2]
