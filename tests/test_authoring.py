"""`timepoint new`: the model writes a template that validates and runs; a draft that does not
validate gets one repair round, with the validation error sent back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from timepoint.authoring import DraftEntity, SceneDraft, write_template
from timepoint.errors import UserError
from timepoint.scenario import load_template

PREMISE = "CEO announces mandatory salary cuts due to a market downturn"
SCRIPT = Path(sys.executable).with_name("timepoint")


def new(tmp_path: Path, model: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), "new", PREMISE, "--entities", "3", "--timepoints", "2", "--model", model,
                           "--out", str(tmp_path / "templates"), *extra], capture_output=True, text=True,
                          cwd=tmp_path, timeout=1800, env={**os.environ, "TIMEPOINT_HOME": str(tmp_path / "home")})


def runs_on_the_test_model(path: Path, tmp_path: Path) -> None:
    template, _ = load_template(str(path))
    assert len(template.entities) == 3 and template.timepoints == 2 and template.mode == "forward"
    proc = subprocess.run([sys.executable, "-m", "timepoint", f"template={path}", "model=test",
                           f"hydra.run.dir={tmp_path / 'run'}", f"paths.home={tmp_path / 'home'}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr


def test_the_test_model_writes_a_runnable_template(tmp_path):
    proc = new(tmp_path, "test", "--name", "salary_cuts")
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert path == tmp_path / "templates" / "salary_cuts.yaml"
    runs_on_the_test_model(path, tmp_path)
    again = new(tmp_path, "test", "--name", "salary_cuts")
    assert again.returncode == 2 and "exists; choose another --name" in again.stderr


@pytest.mark.embedded
def test_the_embedded_model_writes_a_runnable_template(tmp_path):
    proc = new(tmp_path, "local")
    assert proc.returncode == 0, proc.stderr
    runs_on_the_test_model(Path(proc.stdout.strip()), tmp_path)


PERSON = dict(name="Ana Ruiz", title="CEO", description="Runs the company.", age=50,
              personality_traits=["decisive", "cold", "ambitious"],
              initial_knowledge=["Cash lasts nine months.", "The board wants cuts."], goals=["Keep it afloat."],
              sentence_length="short", verbal_tics=[], disagreement_style="Overrules.",
              speech_examples=["We cut.", "Nine months.", "Decided."])


class Scripted:
    """A gateway that writes scenes with the premises given, in order, and a cast of Ana and Ben;
    it keeps every prompt it was sent."""

    def __init__(self, *premises: str):
        self.premises, self.sent, self.people = list(premises), [], 0

    async def structured(self, role, messages, schema, **kw):
        self.sent.append(messages[-1]["content"])
        if schema is SceneDraft:
            return SceneDraft(title="Cuts", premise=self.premises.pop(0), location="Boardroom",
                              opening_event="Ana stands up.", year=2025, month=3, day=3, hour=9, resolution="hour",
                              step=1)
        self.people += 1
        return DraftEntity(**{**PERSON, "name": "Ana Ruiz" if self.people % 2 else "Ben Ode"})


def test_an_invalid_draft_gets_one_repair_round_with_the_error():
    gateway = Scripted("Too short.", "A long enough premise about salary cuts and who knows what.")
    template = asyncio.run(write_template(gateway, PREMISE, entities=2, timepoints=2))
    assert template["premise"].startswith("A long enough premise")
    assert [e["id"] for e in template["entities"]] == ["ana_ruiz", "ben_ode"]
    repair = gateway.sent[3]                                    # the second scene prompt
    assert "did not validate" in repair and "premise" in repair and "at least 20 characters" in repair
    assert "Ana Ruiz (CEO)" in gateway.sent[2]                 # each person knows who is already cast


def test_a_draft_still_invalid_after_repair_is_refused():
    with pytest.raises(UserError, match="did not validate after a repair round"):
        asyncio.run(write_template(Scripted("Too short.", "Still short."), PREMISE, entities=2, timepoints=2))
