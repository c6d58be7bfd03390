"""Degenerate turns never become records (issue 14, item 7): the gate's judgement on lines the
embedded model really wrote on the default template, and the engine resampling such a turn, dropping
it as a gap when it stays degenerate, and counting what it caught."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from conftest import new_simulation

from timepoint.dialog import graph
from timepoint.dialog.context import fourth_wall
from timepoint.dialog.graph import DialogEngine
from timepoint.dialog.quality import degenerate, surface_quality
from timepoint.llm.providers.test import TestProvider
from timepoint.llm.request import Completion
from timepoint.world import Timepoint, Turn

EARLIER = [("priya_raman", "Figure 3 is wrong. Batch 7 is 3.1 standard deviations off."),
           ("martin_okafor", "Look, Priya, we have until five tomorrow."),
           ("priya_raman", "Sorry, but p = 0.06 is not a result.")]


def opening(sim) -> Timepoint:
    tp = Timepoint(id="tp_000", index=0, timestamp=sim.time_of(0), event=sim.opening_event,
                   entities_present=list(sim.entities))
    sim.add_timepoint(tp)
    return tp


@pytest.fixture(scope="module")
def dale(tmp_path_factory):
    """Dale Kowalski's prompt for turn 4 of the default template's opening dialog, as the engine
    writes it: (messages, earlier lines, names and titles, the turn count it states)."""
    async def go():
        sim = await new_simulation(tmp_path_factory.mktemp("dale"))
        tp = opening(sim)
        ids = list(sim.entities)
        engine = DialogEngine(sim, tp, ids)
        turns = [Turn(index=i, speaker=s, content=c) for i, (s, c) in enumerate(EARLIER)]
        state = {"turns": turns, "steps": 3, "mood": "neutral", "speaker": "dale_kowalski",
                 "move": "direct_statement", "target": None, "hint": None}
        wall = fourth_wall(sim, sim.entities["dale_kowalski"], tp, ids, engine.knowledge)
        labels = [w for e in sim.entities.values() for w in (e.name, e.title)]
        return engine._character_messages(state, wall), labels, engine.structure.max_turns
    messages, labels, max_turns = asyncio.run(go())
    assert "Dale Kowalski" in labels and "Lab Manager" in labels
    return messages, [c for _, c in EARLIER], labels, max_turns


def judge(dale, line):
    messages, earlier, names, _ = dale
    return degenerate(line, messages, earlier, names)


@pytest.mark.parametrize("line, kind", [
    ("Dale Kowalski says:", "label"),
    ("Dale Kowalski says: ", "label"),
    ("{{Dale Kowalski}}", "label"),
    ("Dale Kowalski, Dr. Martin Okafor, says", "label"),
    ("...", "label"),
    ("He said,", "label"),                                               # seed 1, turn 1, on the embedded model
    ("The Mood: Neutral", "instruction_echo"),
    ("Dale Kowalski, Lab Manager. A plain-spoken lab manager who has run the Okafor Lab for nine years.",
     "prompt_copy"),
    ("He logged the freezer failure in the paper logbook on the freezer door, yeah.", "prompt_copy"),
    ("*shrugs*", "stage_direction"),
    ("(long pause) [looks at freezer two]", "stage_direction"),
    ("Sorry, but p = 0.06 is not a result.", "repeat"),                 # Priya's line, said again by Dale
    ("Look, Priya, we have until five tomorrow!", "repeat"),
    ("Look Priya we have until five, tomorrow.", "repeat"),
])
def test_recorded_degenerate_lines_are_caught(dale, line, kind):
    reason = judge(dale, line)
    assert reason is not None and reason.split(":")[0] == kind, reason


def test_a_line_that_reads_back_its_turn_count_is_an_echo(dale):
    max_turns = dale[3]
    assert f"this is turn 4 of about {max_turns}" in dale[0][0]["content"]
    for line in (f"So this is turn 4 of about {max_turns}.", "Direction for your next line, then.",
                 "Yeah, no. The mood is neutral, Martin."):
        assert judge(dale, line).startswith("instruction_echo"), line


@pytest.mark.parametrize("line", [
    "So, technically, batch 7 was stored in the freezer that failed on the 3rd.",
    "We submit tomorrow at five, with or without Figure 3.",
    "Dale, you logged the freezer alarm, didn't you?",
    "Dale Kowalski, you logged the freezer alarm.",
    "Freezer two. August 14. Paper log on the door.",          # his specifics, not a copied span
    "Yeah, no.",
    "What do you think?",
    "*sighs* Fine. Lot 2291, four vials left.",
    "Martin, the grant is not worth your name.",
])
def test_ordinary_lines_pass_and_are_caught_when_said_again(dale, line):
    messages, earlier, names, _ = dale
    assert degenerate(line, messages, earlier, names) is None
    assert degenerate(line, messages, earlier + [line], names).startswith("repeat")


# -- the engine ---------------------------------------------------------------------------

class Scripted(TestProvider):
    """The test model, whose lines can be replaced per call: `script(n, request)` returns a line for
    the n-th TurnDraft request (1-based), or None for the test model's own. Steering is fixed: never
    ends, always speaks directly, keeps the mood."""

    def __init__(self, card, script):
        super().__init__(card)
        self.script, self.requests, self.drafts = script, [], []

    async def complete(self, request):
        self.requests.append(request)
        title = request.json_schema.get("title")
        if title == "SteeringDecision":
            people = request.json_schema["properties"]["next_speaker"]["enum"]
            return Completion(json.dumps({
                "next_speaker": people[len(self.requests) % len(people)], "dialog_move": "direct_statement",
                "move_target": "everyone", "move_rationale": "go on", "mood_shift": "maintain",
                "suppress_speaker": [], "end_dialog": False}), 10, 10)
        if title == "TurnDraft":
            self.drafts.append(request)
            line = self.script(len(self.drafts), request)
            if line is not None:
                return Completion(json.dumps({"content": line, "emotional_tone": "neutral",
                                              "knowledge_references": []}), 10, 10)
        return await super().complete(request)


def scripted_dialog(tmp_path, script, *overrides):
    async def go():
        sim = await new_simulation(tmp_path, "dialog.semantic_check=false", *overrides)
        provider = Scripted(sim.gateway._models["test"].card, script)
        sim.gateway._models["test"].provider = provider
        engine = DialogEngine(sim, opening(sim), list(sim.entities))
        dialog = await engine.run()
        sim.store.save_dialog(dialog)
        return sim, engine, dialog, provider
    return asyncio.run(go())


def system(request) -> str:
    return request.messages[0]["content"]


def test_a_degenerate_turn_is_resampled_and_a_persistent_one_becomes_a_gap(tmp_path):
    script = {2: "Dale Kowalski says:", 4: "The Mood: Neutral", 5: "*shrugs*"}
    sim, engine, dialog, provider = scripted_dialog(tmp_path, lambda n, _: script.get(n),
                                                    "dialog.max_turns=6", "dialog.min_turns=6")
    spoken = [t.content for t in dialog.turns]
    stored = [r["content"] for r in sim.store.rows("turns")]
    assert len(dialog.turns) == 6 and stored == spoken
    for line in script.values():
        assert line not in stored
    labels = [w for e in sim.entities.values() for w in (e.name, e.title)]
    assert not any(degenerate(t.content, [], [], labels) for t in dialog.turns)

    first, again = provider.drafts[1], provider.drafts[2]           # the label, then its resample
    assert "Your last attempt was rejected" not in system(first)
    assert "Your last attempt was rejected: it is only a speaker label, nothing said. Write one new" in system(again)
    assert again.key() != first.key(), "the resample must be a new request, not a cache hit"
    assert dialog.turns[1].content not in script.values()          # the resample was kept

    gaps = sim.store.rows("gaps")
    dropped_by = next(e.id for e in sim.entities.values() if system(provider.drafts[4]).startswith(f"You are {e.name}"))
    assert [(g["unit"], g["timepoint_id"]) for g in gaps] == [(f"dialog turn 3 ({dropped_by})", "tp_000")]
    assert gaps[0]["reason"].startswith("degenerate: stage_direction")
    after = [system(r) for r in provider.drafts[5:]]                # the dialog went on; the next line is told
    assert "1 line written here so far had to be dropped; the last is a stage direction" in after[0]
    assert not any("had to be dropped" in text for text in after[1:])  # ... until a turn is kept

    checks = dialog.quality_checks
    assert checks["degenerate_caught"] == 3 and checks["degenerate_dropped"] == 1
    assert checks["degenerate_reasons"] == {"label": 1, "instruction_echo": 1, "stage_direction": 1}
    attempts = len(provider.drafts)
    assert attempts == 6 + 3
    assert dialog.quality_score == round(surface_quality(dialog.turns).score * (1 - 3 / attempts), 4)
    row = sim.store.rows("dialogs")[0]
    assert json.loads(row["quality_checks"])["degenerate_caught"] == 3


def own_prompt_copy(request) -> str:
    """Twenty words of the speaker's own direction, from its name on: what a 135M model hands back."""
    return " ".join(system(request).split()[2:22])


def test_a_model_that_keeps_copying_its_prompt_ends_the_dialog_after_three_drops(tmp_path):
    sim, engine, dialog, provider = scripted_dialog(
        tmp_path, lambda n, request: own_prompt_copy(request) if n > 2 else None,
        "dialog.max_turns=8", "dialog.min_turns=8")
    assert len(dialog.turns) == 2
    assert not any(own_prompt_copy(r) in [t.content for t in dialog.turns] for r in provider.drafts)
    gaps = sim.store.rows("gaps")
    assert len(gaps) == graph.MAX_DROPS == 3
    dropped = [re.fullmatch(r"dialog turn 3 \((priya_raman|martin_okafor|dale_kowalski)\)", g["unit"]).group(1)
               for g in gaps]
    assert all(a != b for a, b in zip(dropped, dropped[1:])), "after a drop the next line is someone else's"
    assert all(g["reason"].startswith("degenerate: prompt_copy: copies") for g in gaps)
    keys = [r.key() for r in provider.drafts]
    assert len(set(keys)) == len(keys), "after a drop the same request must not be sent again"
    assert dialog.quality_checks["degenerate_caught"] == 6 and dialog.quality_checks["degenerate_dropped"] == 3
    assert dialog.quality_score == round(surface_quality(dialog.turns).score * (2 / 8), 4)
    assert dialog.quality_passed is False


HEDGES = ["Well, I think the freezer log settles it.", "Well, I think we call the program officer tonight.",
          "Well, I think Figure 3 needs a footnote.", "Well, I think lot 2291 goes out for testing.",
          "Well, I think the K99 can wait a week.", "Well, I think Keystone was a mistake.",
          "Well, I think nobody leaves until this is done."]


def test_the_step_limit_still_bounds_a_dialog_of_rewrites_and_resamples(tmp_path, monkeypatch):
    """The worst step: a hedged line rewritten, the rewrite degenerate and resampled, the resample
    degenerate and dropped — every step, until the steering step limit ends the dialog."""
    monkeypatch.setattr(graph, "MAX_DROPS", 100)
    hedges = iter(HEDGES)

    def script(n, request):
        if n == 1:
            return "Well, we wait."
        if "Do not open with a hedge" in system(request) or "Your last attempt was rejected" in system(request):
            return "{{Dale Kowalski}}"
        return next(hedges)
    sim, engine, dialog, provider = scripted_dialog(tmp_path, script, "dialog.max_turns=4", "dialog.min_turns=4")
    assert [t.content for t in dialog.turns] == ["Well, we wait."]
    steps = engine.step_limit
    assert len(provider.drafts) == 1 + 3 * (steps - 1)
    assert len(sim.store.rows("gaps")) == steps - 1
    assert dialog.quality_checks["degenerate_caught"] == 2 * (steps - 1)
