"""Counterfactual JSONL (BRANCHING runs): one record per timepoint of every branch that is not `main`.

Each branch is a timeline whose first timepoint hangs from its branch point on its parent timeline
(the main timeline's transitions are the training records). A record gives the scenario, the history
that led to the moment (along the causal ancestry, across timelines), the state just before with its
resources, and what is counterfactual there: the branch, its branch point, the kind of future it
took at this step and the interventions in force — and, at the fork itself, what the parent timeline
did instead. Its completion is what the branch holds at that timepoint. Runs of other modes have no
counterfactual records, and no file.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..history import RunHistory, TimelineRecord, TimepointRecord
from ..store import RunStore
from .backward import run_metadata, scenario, state_line
from .lines import write_jsonl
from .training import Section, prompt_of

HISTORY_SHOWN = 5


def _resources(tp: TimepointRecord) -> str:
    resources = tp.metadata.get("resources") or {}
    return "; ".join(f"{k} {v:g}" for k, v in resources.items())


def _instead(h: RunHistory, timeline: TimelineRecord, tp: TimepointRecord) -> TimepointRecord | None:
    """At a fork: the timepoint the parent timeline has where this branch has `tp`."""
    if not timeline.parent_id or tp.causal_parent != timeline.branch_point:
        return None
    return next((t for t in h.timeline(timeline.parent_id) if t.causal_parent == tp.causal_parent), None)


def _counterfactual(h: RunHistory, timeline: TimelineRecord, tp: TimepointRecord) -> Section:
    name = timeline.metadata.get("name") or timeline.id
    lines = [f"Branch {timeline.id} ({name})"
             + (f", forked from {timeline.parent_id} at {timeline.branch_point}." if timeline.parent_id else ".")]
    if tp.metadata.get("outcome"):
        lines.append(f"Kind of future at this step: {tp.metadata['outcome']}.")
    interventions = tp.metadata.get("interventions") or []
    lines.append("Counterfactual in force: " + ("; ".join(interventions) if interventions else "none."))
    instead = _instead(h, timeline, tp)
    if instead:
        lines.append(f"On {instead.timeline_id}, what followed instead ({instead.id}): {instead.event}")
    return Section("COUNTERFACTUAL", "\n".join(lines), ("M12",))


def _record(h: RunHistory, timeline: TimelineRecord, tp: TimepointRecord) -> dict:
    parent = h.parent(tp)
    chain = h.chain(parent, limit=HISTORY_SHOWN) if parent else []
    prompt, mechanisms = prompt_of([
        "What happens next on this branch of the story?",
        scenario(h),
        Section("HISTORY", "What led here, oldest first:\n" + "\n".join(state_line(t) for t in chain), ("M7",))
        if chain and h.run.has("M7") else None,
        Section("STATE BEFORE", f"{parent.timestamp}: {parent.event}"
                + (f"\nResources: {_resources(parent)}" if _resources(parent) else "")) if parent else None,
        _counterfactual(h, timeline, tp),
        f"=== TASK ===\nBy {tp.timestamp}: what happens, who takes part, and why does it follow?",
    ])
    completion = {"timestamp": tp.timestamp, "event": tp.event, "key_events": tp.metadata.get("key_events") or [],
                  "entities_involved": tp.present, "causal_link": tp.causal_link,
                  "outcome": tp.metadata.get("outcome"), "resources": tp.metadata.get("resources") or {},
                  "plausibility": tp.importance}
    return {
        "prompt": prompt,
        "completion": json.dumps(completion, ensure_ascii=False),
        "metadata": {**run_metadata(h), "mechanisms": mechanisms, "timeline_id": timeline.id,
                     "branch_name": timeline.metadata.get("name"), "parent_timeline_id": timeline.parent_id,
                     "branch_point": timeline.branch_point, "interventions": tp.metadata.get("interventions") or [],
                     "outcome": tp.metadata.get("outcome"), "rank": timeline.rank, "coherence": timeline.coherence,
                     "timepoint_id": tp.id, "from_timepoint_id": tp.causal_parent,
                     "fork": _instead(h, timeline, tp) is not None},
    }


def counterfactual_records(source: RunStore | RunHistory) -> list[dict]:
    h = RunHistory.of(source)
    return [_record(h, timeline, tp) for timeline in h.timelines.values()
            if timeline.mode == "branching" and timeline.id != "main" for tp in h.timeline(timeline.id)]


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    records = counterfactual_records(store)
    return [write_jsonl(out_dir / "counterfactual.jsonl", records, compression)] if records else []
