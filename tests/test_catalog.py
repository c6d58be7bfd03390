"""The scenario catalog: every template validates, runs to completion on the test model, and is
listed with its mode, tier, size, mechanisms and an estimated cost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from timepoint.scenario import available_templates, load_template

TEMPLATES = available_templates()


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_runs_to_completion_on_the_test_model_and_passes_the_audit(timepoint, home, name):
    result = timepoint("model=test", f"template={name}")
    assert result.code == 0, result.stderr
    s = result.summary
    assert s["status"] == "completed" and s["mode"] == load_template(name)[0].mode
    assert s["counts"]["timepoints"] >= 1 and s["counts"]["dialogs"] >= 1
    audit = subprocess.run([sys.executable, "-m", "timepoint.cli", "audit", str(result.run_dir)],
                           capture_output=True, text=True, env={**os.environ, "TIMEPOINT_HOME": str(home)})
    assert audit.returncode == 0 and "no violations" in audit.stdout, audit.stdout + audit.stderr


def test_the_list_shows_every_template_with_its_estimate(tmp_path):
    script = Path(sys.executable).with_name("timepoint")
    proc = subprocess.run([str(script), "list", "--model", "deepseek"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()[1:]}
    assert set(lines) == set(TEMPLATES)
    for name, line in lines.items():
        t = load_template(name)[0]
        assert f" {t.mode} " in line and f" {t.tier} " in line and t.title in line
        cost = float(next(w for w in line.split() if w.startswith("$"))[1:])
        assert cost > 0
