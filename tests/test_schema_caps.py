"""Answers that cannot run away: every string and every list in every response schema the product
sends is capped (maxLength, maxItems), so a grammar-decoded answer always closes inside its budget.

The schemas are not listed by hand: every mode, a query and `timepoint new` run on the test model
behind a provider that records the JSON schema of each request it is sent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml
from conftest import new_simulation

from timepoint.llm.providers.test import TestProvider
from timepoint.modes import MODES
from timepoint.paths import TEMPLATES_DIR


class Recording:
    """The test model, keeping every distinct response schema it is asked for."""

    def __init__(self):
        self.inner = TestProvider(None)
        self.schemas: dict[str, dict] = {}

    async def complete(self, request):
        self.schemas.setdefault(json.dumps(request.json_schema, sort_keys=True), request.json_schema)
        answer = await self.inner.complete(request)
        if request.json_schema.get("title") == "CycleSemantics":  # a causal loop, so its closure is checked too
            answer.text = json.dumps({**json.loads(answer.text), "cycle_type": "causal_loop"})
        return answer

    async def close(self) -> None:
        await self.inner.close()


def uncapped(schema: dict, root: dict | None = None, path: str = "$", seen: frozenset = frozenset()) -> list[str]:
    """Paths in a JSON schema where a string has no maxLength or a list no maxItems."""
    root = root or schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        return uncapped(root["$defs"][name], root, f"{path}<{name}>", seen | {name})
    found = []
    for union in ("anyOf", "oneOf", "allOf"):
        for k, option in enumerate(schema.get(union, [])):
            found += uncapped(option, root, f"{path}|{k}", seen)
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if "string" in kinds and "maxLength" not in schema and "enum" not in schema and "const" not in schema:
        found.append(f"{path}: string without maxLength")
    if "array" in kinds:
        if "maxItems" not in schema:
            found.append(f"{path}: array without maxItems")
        if isinstance(schema.get("items"), dict):
            found += uncapped(schema["items"], root, f"{path}[]", seen)
        for k, item in enumerate(schema.get("prefixItems", [])):
            found += uncapped(item, root, f"{path}[{k}]", seen)
    for name, sub in schema.get("properties", {}).items():
        found += uncapped(sub, root, f"{path}.{name}", seen)
    if isinstance(schema.get("additionalProperties"), dict) and "maxProperties" not in schema:
        found.append(f"{path}: object with open keys and no maxProperties")
    return found


def test_the_walker_finds_what_is_uncapped():
    from typing import Annotated

    from pydantic import BaseModel, Field

    class Inner(BaseModel):
        note: str
        tag: str = Field(max_length=10)

    class Outer(BaseModel):
        words: list[str] = Field(max_length=2)
        capped: list[Annotated[str, Field(max_length=5)]] = Field(max_length=2)
        inner: list[Inner]
        maybe: str | None = None

    assert sorted(uncapped(Outer.model_json_schema())) == sorted([
        "$.words[]: string without maxLength", "$.inner: array without maxItems",
        "$.inner[]<Inner>.note: string without maxLength", "$.maybe|0: string without maxLength"])


def _filled_in_template(tmp_path: Path) -> str:
    """convergence_simple with its scene and one character sheet left for the model to write."""
    raw = yaml.safe_load((TEMPLATES_DIR / "convergence_simple.yaml").read_text())
    raw.pop("scene")
    for key in ("description", "personality_traits", "initial_knowledge", "goals"):
        raw["entities"][2].pop(key)
    path = tmp_path / "fill_in.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


RUNS = {  # name -> overrides; each runs its mode to completion
    "forward": lambda tmp: [f"template={_filled_in_template(tmp)}", "dialog.quality_every=2"],
    "forward_board": lambda tmp: ["template=board_meeting"],
    "portal": lambda tmp: ["template=mars_mission_portal"],
    "portal_simulated": lambda tmp: ["template=mars_mission_portal", "mode.scoring=simulation",
                                     "mode.exploration=oscillating"],
    "branching": lambda tmp: ["template=castaway_colony_branching"],
    "cyclical": lambda tmp: ["template=agent4_elk_migration"],
    "directorial": lambda tmp: ["template=hound_shadow_directorial", "mode.steps=6"],
}


async def _run_modes(tmp_path: Path, recording: Recording) -> Path:
    """Every mode on the test model; returns the forward run's directory, with the config a query reads."""
    dirs = {}
    for name, overrides in RUNS.items():
        run_dir = tmp_path / name
        run_dir.mkdir()
        sim = await new_simulation(run_dir, *overrides(tmp_path), "dialog.max_turns=3", "dialog.min_turns=2",
                                   providers={"test": recording})
        await MODES[sim.mode].run(sim)
        sim.finish()
        sim.store.update_run(config_json=json.dumps(sim.config.model_dump(mode="json")))
        await sim.gateway.close()
        sim.store.close()
        dirs[name] = run_dir
    return dirs["forward"]


async def _query(run_dir: Path, recording: Recording) -> None:
    from timepoint.query import ask
    from timepoint.store import RunStore

    store = RunStore(run_dir / "run.db")
    entities = [e["entity_id"] for e in store.rows("entities")]
    store.close()
    questions = ["What do you know about the grant?", "Who do you trust in the lab?", "What did you do last night?",
                 "How do you usually talk to people?", "What happened in August?"]
    for entity in entities:
        for question in questions:
            await ask(run_dir, entity, question, providers={"test": recording})
            if any(s.get("title") == "NewKnowledge" for s in recording.schemas.values()):
                return


async def _author(tmp_path: Path, recording: Recording) -> None:
    from timepoint.__main__ import prepared
    from timepoint.authoring import write_template
    from timepoint.engine import model_session

    run = prepared(["model=test", f"paths.home={tmp_path}", "cache.mode=off"])
    async with model_session(run.config, run.chains, lambda call: None, {"test": recording}) as gateway:
        await write_template(gateway, "CEO announces mandatory salary cuts due to a market downturn", 3, 2)


def test_every_schema_the_product_sends_is_capped(tmp_path):
    recording = Recording()

    async def go():
        forward = await _run_modes(tmp_path, recording)
        await _query(forward, recording)
        await _author(tmp_path / "authoring", recording)
    asyncio.run(go())

    titles = {s.get("title") for s in recording.schemas.values()}
    expected = {
        "TurnDraft", "SteeringDecision", "DialogOutcome", "MemoryNote", "Rumination",      # the dialog engine
        "SemanticCheck",
        "SceneFill", "EntityFill", "TemperamentReading",                                  # scene set-up, M6
        "NextEvent", "Rating",                                                            # forward, link judging
        "CandidateStates", "CandidateRanking", "SimulatedStep",                           # portal
        "Consequents",                                                                    # branching
        "CycleSemantics", "CycleState", "Prophecy", "FulfilmentCheck", "LoopClosure",     # cyclical
        "CycleJudgement",
        "NarrativePlan", "CameraPlan", "Scene", "DraftVerdict",                           # directorial
        "Classified", "NewKnowledge", "Reply",                                            # query
        "SceneDraft", "DraftEntity",                                                      # authoring
    }
    assert expected <= titles, f"never sent: {sorted(expected - titles)}; sent: {sorted(titles)}"
    problems = sorted({f"{schema.get('title')}: {where}" for schema in recording.schemas.values()
                       for where in uncapped(schema)})
    assert not problems, "uncapped strings or lists in sent schemas:\n" + "\n".join(problems)
