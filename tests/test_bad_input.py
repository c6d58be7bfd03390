"""User mistakes: one clear line on stderr, exit code 2, no traceback, nothing written but .hydra/."""

from __future__ import annotations

import pytest


def assert_refused(result, *fragments: str) -> None:
    assert result.code == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    if result.run_dir.exists():
        assert sorted(p.name for p in result.run_dir.iterdir()) == [".hydra"]


def test_unknown_template_lists_the_available_ones(timepoint):
    assert_refused(timepoint("model=test", "template=nope"), "'nope'", "board_meeting", "convergence_simple",
                   "jefferson_dinner")


@pytest.mark.parametrize("override,valid", [
    ("mode=nope", "forward"),
    ("model=nope", "deepseek, deepseek_r1"),
    ("budget=tight", "hard, soft, unlimited"),
    ("exporters=everything", "default"),
])
def test_unknown_group_option_names_the_valid_ones(timepoint, override, valid):
    group, bad = override.split("=")
    assert_refused(timepoint("model=test", override) if group != "model" else timepoint(override),
                   group, f"'{bad}'", valid)


def test_unknown_option_in_a_sweep_is_refused_before_anything_runs(timepoint, tmp_path):
    result = timepoint("-m", "model=test,gpt9", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert_refused(result, "model", "'gpt9'")
    assert not (tmp_path / "sweep").exists()


def test_negative_budget_is_refused(timepoint):
    assert_refused(timepoint("model=test", "budget=hard", "budget.max_cost_usd=-0.5"), "budget.max_cost_usd",
                   "-0.5")


def test_template_missing_a_field_names_field_and_file(timepoint, tmp_path):
    bad = tmp_path / "no_premise.yaml"
    bad.write_text("world_id: w\ntitle: T\ntime: {start: 2026-01-01T09:00:00}\ntimepoints: 2\n"
                   "entities: [{id: a}, {id: b}]\n")
    assert_refused(timepoint("model=test", f"template={bad}"), str(bad), "premise", "Field required")


def test_template_field_of_wrong_type_names_field_value_and_file(timepoint, tmp_path):
    bad = tmp_path / "wrong_type.yaml"
    bad.write_text("world_id: w\ntitle: T\npremise: A premise long enough to pass the check.\n"
                   "time: {start: 2026-01-01T09:00:00}\ntimepoints: many\nentities: [{id: a}, {id: b}]\n")
    assert_refused(timepoint("model=test", f"template={bad}"), str(bad), "timepoints", "'many'")


def test_template_mode_is_used_unless_mode_is_given(timepoint, tmp_path):
    from timepoint.paths import TEMPLATES_DIR
    cyclical = tmp_path / "prefers_cyclical.yaml"
    cyclical.write_text((TEMPLATES_DIR / "convergence_simple.yaml").read_text().replace("mode: forward",
                                                                                        "mode: cyclical"))
    preferred = timepoint("model=test", f"template={cyclical}")
    assert preferred.code == 0, preferred.stderr
    assert preferred.summary["mode"] == "cyclical"
    chosen = timepoint("model=test", f"template={cyclical}", "mode=forward")
    assert chosen.code == 0, chosen.stderr
    assert chosen.summary["mode"] == "forward"


def test_unknown_template_in_a_sweep_is_refused_before_anything_runs(timepoint, tmp_path):
    result = timepoint("-m", "model=test", "template=board_meeting,nope", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert_refused(result, "template", "'nope'", "board_meeting")
    assert not (tmp_path / "sweep").exists()
