"""User mistakes: one clear line on stderr, exit code 2, no traceback, nothing written but .hydra/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from timepoint.store import Catalog


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
    ("model=_base", "deepseek, deepseek_r1"),
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


# -- templates that cannot be read -----------------------------------------------------------

@pytest.mark.parametrize("content", [
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", id="binary"),
    pytest.param("world_id: caf\u00e9\n".encode("latin-1"), id="latin-1"),
    pytest.param(b"world_id: w\x00\ntitle: T\n", id="nul-in-utf8"),
])
def test_template_that_is_not_text_is_refused(timepoint, tmp_path, content):
    bad = tmp_path / "binary.yaml"
    bad.write_bytes(content)
    assert_refused(timepoint("model=test", f"template={bad}"), str(bad), "text")


@pytest.mark.parametrize("make,fragments", [
    pytest.param(lambda p: p.mkdir(), ("is a directory",), id="directory"),
    pytest.param(lambda p: p.write_text(""), ("is empty",), id="empty"),
    pytest.param(lambda p: p.write_text("# only a comment\n"), ("is empty",), id="only-comments"),
    pytest.param(lambda p: p.write_text("- a\n- b\n"), ("mapping", "list"), id="list"),
    pytest.param(lambda p: p.write_text("just words\n"), ("mapping", "str"), id="scalar"),
    pytest.param(lambda p: p.write_text("world_id: w\ntitle: [unclosed\n"), ("not valid YAML", "line"),
                 id="bad-yaml"),
])
def test_unreadable_template_is_one_line(timepoint, tmp_path, make, fragments):
    bad = tmp_path / "unreadable.yaml"
    make(bad)
    assert_refused(timepoint("model=test", f"template={bad}"), str(bad), *fragments)


def test_unreadable_template_in_a_sweep_is_refused_before_anything_runs(timepoint, tmp_path):
    bad = tmp_path / "binary.yaml"
    bad.write_bytes(b"\xff\xfe\x00\x01")
    result = timepoint("-m", "model=test", f"template=board_meeting,{bad}", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert_refused(result, str(bad))
    assert not (tmp_path / "sweep").exists()


# -- resources whose bounds contradict each other --------------------------------------------

def with_resource(tmp_path, **fields):
    from timepoint.paths import TEMPLATES_DIR
    spec = ", ".join(f"{k}: {v}" for k, v in {"unit": "kg", **fields}.items())
    path = tmp_path / "resourced.yaml"
    path.write_text((TEMPLATES_DIR / "convergence_simple.yaml").read_text() + f"resources:\n  oxygen: {{{spec}}}\n")
    return path


def test_resource_min_above_max_is_refused(timepoint, tmp_path):
    bad = with_resource(tmp_path, initial=5, min=10, max=2)
    assert_refused(timepoint("model=test", f"template={bad}"), str(bad), "resources.oxygen", "min 10", "max 2",
                   "min <= max")


@pytest.mark.parametrize("fields,fragments", [
    ({"initial": 50, "min": 0, "max": 20}, ("initial 50", "[0, 20]")),
    ({"initial": -1, "min": 0}, ("initial -1", "[0, ")),
    ({"initial": 30, "max": 20}, ("initial 30", ", 20]")),
])
def test_resource_initial_outside_its_bounds_is_refused(timepoint, tmp_path, fields, fragments):
    bad = with_resource(tmp_path, **fields)
    assert_refused(timepoint("model=test", f"template={bad}"), str(bad), "resources.oxygen", *fragments)


def test_resource_within_its_bounds_runs(timepoint, tmp_path):
    good = with_resource(tmp_path, initial=20, min=0, max=20, rate=-5, critical_threshold=12)
    result = timepoint("model=test", f"template={good}")
    assert result.code == 0, result.stderr


# -- runs that are no longer where the catalog says ------------------------------------------

def cli(home, *args: str):
    """`timepoint ARGS` (the console script's entry point) with its home at `home`."""
    env = {**os.environ, "TIMEPOINT_HOME": str(home)}
    return subprocess.run([sys.executable, "-c", "from timepoint.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, cwd=home.parent, timeout=300)


def assert_cli_refused(proc, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def moved_run(timepoint, tmp_path, home):
    """A finished model=test run whose directory was then moved away: (run id, where it was)."""
    result = timepoint("model=test")
    assert result.code == 0, result.stderr
    run_id = result.summary["id"]
    shutil.move(result.run_dir, tmp_path / "moved")
    return run_id, result.run_dir


@pytest.mark.parametrize("command", [
    ["export", "last", "--format", "markdown"],
    ["export", "{run_id}", "--format", "training", "--out", "{tmp}/out"],
    ["query", "last", "priya_raman", "What did Dale tell you?"],
    ["diff", "{run_id}", "{run_id}"],
    ["convergence", "{run_id}", "last"],
], ids=["export-last", "export-id", "query", "diff", "convergence"])
def test_a_moved_run_directory_is_one_line_and_creates_nothing(moved_run, home, tmp_path, command):
    run_id, gone = moved_run
    args = [a.format(run_id=run_id, tmp=tmp_path) for a in command]
    assert_cli_refused(cli(home, *args), run_id, str(gone), "run.db")
    assert not gone.exists()
    assert not (tmp_path / "out").exists()
    assert [(r["run_id"], r["run_dir"]) for r in Catalog(home / "catalog.db").runs()] == [(run_id, str(gone))]


@pytest.mark.parametrize("command", [
    ["export", "{dir}", "--format", "markdown"],
    ["query", "{dir}", "priya_raman", "What did Dale tell you?"],
    ["diff", "{dir}", "{dir}"],
    ["convergence", "{dir}", "{dir}"],
], ids=["export", "query", "diff", "convergence"])
def test_a_run_directory_without_a_store_is_one_line_and_creates_nothing(home, tmp_path, command):
    empty = tmp_path / "not_a_run"
    empty.mkdir()
    assert_cli_refused(cli(home, *[a.format(dir=empty) for a in command]), str(empty), "run.db")
    assert list(empty.iterdir()) == []
    assert not home.exists()
