"""Turning a mechanism off removes its behaviour, its rows and what the dataset shows of it; the ones a
run cannot exist without cannot be turned off."""

from __future__ import annotations

import json
import sqlite3

import pytest

from timepoint.mechanisms import HOMES, MECHANISMS, REQUIRED


def all_but(*off: str) -> str:
    return "mechanisms.enabled=[" + ",".join(m for m in MECHANISMS if m not in off) + "]"


def table(result, sql: str) -> list[tuple]:
    return sqlite3.connect(result.run_dir / "run.db").execute(sql).fetchall()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """convergence_simple on the test model with everything on, and with M3 off and with M7 off."""
    import os
    import subprocess
    import sys

    from conftest import RunResult
    tmp = tmp_path_factory.mktemp("switches")
    results = {}
    for name, switch in (("all", "mechanisms=all"), ("no_m3", all_but("M3")), ("no_m7", all_but("M7"))):
        run_dir = tmp / name
        proc = subprocess.run([sys.executable, "-m", "timepoint", "model=test", "template=convergence_simple", switch,
                               f"hydra.run.dir={run_dir}"], capture_output=True, text=True, cwd=tmp,
                              env={**os.environ, "TIMEPOINT_HOME": str(tmp / "home")}, timeout=300)
        assert proc.returncode == 0, proc.stderr
        results[name] = RunResult(0, proc.stdout, proc.stderr, run_dir)
    return results


def test_every_mechanism_has_one_home():
    assert set(HOMES) == set(MECHANISMS)


def test_m3_off_knowledge_does_not_flow(runs):
    on, off = runs["all"], runs["no_m3"]
    assert table(on, "SELECT COUNT(*) FROM exposure_events")[0][0] > 0
    assert table(off, "SELECT COUNT(*) FROM exposure_events")[0][0] == 0
    assert table(off, "SELECT COUNT(*) FROM mechanism_usage WHERE mechanism = 'M3'")[0][0] == 0
    # nobody learns anything past what the template gave them: knowledge counts stand still
    counts = table(off, "SELECT entity_id, COUNT(DISTINCT knowledge_count) FROM entity_states GROUP BY entity_id")
    assert counts and all(n == 1 for _, n in counts)
    learned_on = [json.loads(r["completion"])["new_knowledge_gained"] for r in on.training_records()]
    learned_off = [json.loads(r["completion"])["new_knowledge_gained"] for r in off.training_records()]
    assert any(learned_on) and not any(learned_off)
    assert all("M3" not in r["metadata"]["mechanisms"] for r in off.training_records())


def test_m7_off_timepoints_carry_no_causal_claim(runs):
    on, off = runs["all"], runs["no_m7"]
    assert table(on, "SELECT COUNT(*) FROM causal_edges")[0][0] > 0
    assert table(off, "SELECT COUNT(*) FROM causal_edges")[0][0] == 0
    assert table(off, "SELECT COUNT(*) FROM mechanism_usage WHERE mechanism = 'M7'")[0][0] == 0
    assert {link for (link,) in table(off, "SELECT causal_link FROM timepoints")} == {""}
    assert all("M7" not in r["metadata"]["mechanisms"] for r in off.training_records())
    assert all("CAUSAL HISTORY" not in r["prompt"] for r in off.training_records())
    assert any("CAUSAL HISTORY" in r["prompt"] for r in on.training_records())


@pytest.mark.parametrize("required", REQUIRED)
def test_a_mechanism_no_run_exists_without_cannot_be_disabled(timepoint, required):
    result = timepoint("model=test", all_but(required))
    assert result.code == 2
    assert f"{required} ({MECHANISMS[required]}) cannot be disabled" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (result.run_dir / "run.db").exists()


def test_branching_without_m12_is_refused_with_what_to_do(timepoint):
    result = timepoint("model=test", "template=castaway_colony_branching", "mechanisms=minimal")
    assert result.code == 2
    assert "mode=branching is counterfactual branching (M12)" in result.stderr and "enable M12" in result.stderr
    assert not (result.run_dir / "run.db").exists()
