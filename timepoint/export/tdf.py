"""TDF: the whole run as one JSON-LD `RenderedFuture` record, for exchange with other Timepoint tools.

Unlike the reference (§7.2), the record is literal JSON-LD and carries every timeline, not just the
main one, so branches and their causal links survive the trip. `tdf_hash` is the SHA-256 of the
record's canonical JSON, so a receiver can tell whether any field was altered.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..store import RunStore
from .lines import write_jsonl
from .view import RunView

CONTEXT = "https://timepointai.com/tdf/v1"
TDF_VERSION = "1.0"


def tdf_hash(record: dict) -> str:
    """SHA-256 hex of the canonical JSON of everything in the record but the hash itself."""
    payload = {k: x for k, x in record.items() if k != "tdf_hash"}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _entity(e: dict) -> dict:
    return {"id": e["entity_id"], "name": e["name"], "type": e["entity_type"], "role": e["role"], "title": e["title"],
            **{k: json.loads(e[k]) for k in ("traits", "tensor", "cognitive")}}


def _timepoint(tp: dict) -> dict:
    """Stores from before the metadata migration hold NULL there."""
    return {"id": tp["timepoint_id"], "index": tp["idx"], "timeline_id": tp["timeline_id"],
            "timestamp": tp["timestamp"], "event": tp["event"], "entities_present": json.loads(tp["entities_present"]),
            "causal_parent": tp["causal_parent"], "causal_link": tp["causal_link"], "importance": tp["importance"],
            "metadata": json.loads(tp["metadata"] or "{}")}


def _timeline(t: dict) -> dict:
    return {"id": t["timeline_id"], "parent_timeline_id": t["parent_timeline_id"], "branch_point": t["branch_point"],
            "mode": t["mode"], "rank": t["rank"], "coherence": t["coherence"], "flags": json.loads(t["flags"]),
            "metadata": json.loads(t["metadata"])}


def _dialog(v: RunView, d: dict) -> dict:
    turns = v.turns.get(d["dialog_id"], [])
    return {"id": d["dialog_id"], "timepoint_id": d["timepoint_id"], "participants": json.loads(d["participants"]),
            "summary": d["summary"],
            "turns": [{"speaker": t["speaker"], "content": t["content"], "emotional_tone": t["emotional_tone"]}
                      for t in turns]}


def _provenance(run: dict) -> dict:
    keys = ("model", "model_license", "seed", "cost_usd", "tokens_in", "tokens_out", "llm_calls", "created_at",
            "finished_at", "duration_s")
    return {**{k: run[k] for k in keys}, "training_safe": bool(run["training_safe"]), "generator": "timepoint"}


def tdf_record(store: RunStore) -> dict:
    v = RunView(store)
    run = v.run
    timepoints = [_timepoint(tp) for tp in store.rows("timepoints", "timeline_id != 'main', timeline_id, idx")]
    record = {
        "@context": CONTEXT, "@type": "RenderedFuture", "tdf_version": TDF_VERSION, "run_id": run["run_id"],
        "scenario": {k: run[k] for k in ("template", "world_id", "title", "premise")},
        "temporal_mode": run["mode"],
        "entities": [_entity(e) for e in v.entities.values()],
        "timepoints": timepoints,
        "timelines": [_timeline(t) for t in store.rows("timelines", "rank, timeline_id")],
        "dialogs": [_dialog(v, d) for d in v.dialogs.values()],
        "causal_graph": {
            "nodes": [tp["id"] for tp in timepoints],
            "edges": [{k: e[k] for k in ("source", "target", "kind")} for e in store.rows("causal_edges")],
        },
        "provenance": _provenance(run),
    }
    return {**record, "tdf_hash": tdf_hash(record)}


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    record = tdf_record(store)
    path = out_dir / "run.tdf.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return [path, write_jsonl(out_dir / "run.tdf.jsonl", [record], compression)]
