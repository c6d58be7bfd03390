"""Backward JSONL (PORTAL runs): the backward task, one record per step back along every path kept.

PORTAL reasons from a known endpoint back to the origin; each path it kept is a timeline stored
origin first (index 0) up to the endpoint (its last timepoint). A record gives the scenario, the
endpoint and the states after step k, and asks for the antecedent at step k and why it leads to the
next state; its completion is the state the path holds there (when, what, key events, who) and the
causal link the path recorded for it. A state several paths share with the same later states is
written once, for the best-ranked path, and names the others (`also_on`). Runs of other modes have
no backward records, and no file.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..history import RunHistory, TimelineRecord, TimepointRecord
from ..store import RunStore
from .lines import write_jsonl
from .training import Section, prompt_of

LATER_SHOWN = 6


def scenario(h: RunHistory) -> Section:
    """The premise and the cast: where every generating prompt of the run starts."""
    cast = ", ".join(f"{e.name} ({e.title})" if e.title else e.name for e in h.entities.values()
                     if e.role != "background")
    return Section("SCENARIO", f"{h.run.title or h.run.template}\n{h.run.premise or ''}\nCast: {cast}".strip())


def state_line(tp: TimepointRecord) -> str:
    key = tp.metadata.get("key_events") or []
    return f"  {tp.id} ({tp.timestamp}): {tp.event}" + (f"\n    key events: {'; '.join(key)}" if key else "")


def run_metadata(h: RunHistory) -> dict:
    run = h.run
    return {"run_id": run.id, "temporal_mode": run.mode, "template": run.template, "model": run.model,
            "seed": run.seed, "training_safe": run.training_safe}


def _record(h: RunHistory, timeline: TimelineRecord, path: list[TimepointRecord], i: int) -> dict:
    antecedent, later, endpoint = path[i], path[i + 1:], path[-1]
    steps, back = len(path) - 1, len(path) - 1 - i
    between = later[:-1][:LATER_SHOWN]
    prompt, mechanisms = prompt_of([
        "Reason backward from a known outcome: what situation came before, and how does it lead to what "
        "follows?",
        scenario(h),
        Section("ENDPOINT", f"Known outcome at {endpoint.timestamp}:\n{endpoint.event}", ("M17",)),
        Section("LATER STATES", "What is known to follow, nearest first:\n" + "\n".join(map(state_line, between)))
        if between else None,
        f"=== TASK ===\nAt {antecedent.timestamp}, step {back} of {steps} back from the endpoint: what was the "
        f"situation, who was involved, and how does it lead to {later[0].id} ({later[0].timestamp})?",
    ])
    pivots = timeline.metadata.get("pivots") or []
    completion = {"timestamp": antecedent.timestamp, "situation": antecedent.event,
                  "key_events": antecedent.metadata.get("key_events") or [], "entities_involved": antecedent.present,
                  "leads_to": later[0].id, "causal_link": antecedent.causal_link,
                  "plausibility": antecedent.importance}
    return {
        "prompt": prompt,
        "completion": json.dumps(completion, ensure_ascii=False),
        "metadata": {**run_metadata(h), "mechanisms": mechanisms, "timeline_id": timeline.id, "rank": timeline.rank,
                     "coherence": timeline.coherence, "flags": timeline.flags, "timepoint_id": antecedent.id,
                     "leads_to": later[0].id, "endpoint_id": endpoint.id, "step": back, "steps": steps,
                     "pivot": back in pivots, "also_on": []},
    }


def backward_records(source: RunStore | RunHistory) -> list[dict]:
    h = RunHistory.of(source)
    records, seen = [], {}
    for timeline in h.timelines.values():
        path = h.timeline(timeline.id)
        if timeline.mode != "portal" or len(path) < 2:
            continue
        for i in range(len(path) - 2, -1, -1):
            key = tuple(tp.event for tp in path[i:])
            if key in seen:
                seen[key]["metadata"]["also_on"].append(timeline.id)
                continue
            seen[key] = _record(h, timeline, path, i)
            records.append(seen[key])
    return records


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    records = backward_records(store)
    return [write_jsonl(out_dir / "backward.jsonl", records, compression)] if records else []
