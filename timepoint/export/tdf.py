"""TDF: the whole run as one JSON-LD `RenderedFuture` record, for exchange with other Timepoint tools.

Unlike the reference (§7.2), the record is literal JSON-LD and carries every timeline, not just the
main one, so branches and their causal links survive the trip. `tdf_hash` is the SHA-256 of the
record's canonical JSON, so a receiver can tell whether any field was altered.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..history import DialogRecord, EntityRecord, RunHistory, RunInfo, TimelineRecord, TimepointRecord
from ..store import RunStore
from .lines import write_jsonl

CONTEXT = "https://timepointai.com/tdf/v1"
TDF_VERSION = "1.0"


def tdf_hash(record: dict) -> str:
    """SHA-256 hex of the canonical JSON of everything in the record but the hash itself."""
    payload = {k: x for k, x in record.items() if k != "tdf_hash"}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _entity(e: EntityRecord) -> dict:
    return {"id": e.id, "name": e.name, "type": e.type, "role": e.role, "title": e.title, "traits": e.traits,
            "tensor": e.tensor.model_dump() if e.tensor else None, "cognitive": e.cognitive.model_dump()}


def _timepoint(tp: TimepointRecord) -> dict:
    return {"id": tp.id, "index": tp.index, "timeline_id": tp.timeline_id, "timestamp": tp.timestamp,
            "event": tp.event, "entities_present": tp.present, "causal_parent": tp.causal_parent,
            "causal_link": tp.causal_link, "importance": tp.importance, "metadata": tp.metadata}


def _timeline(t: TimelineRecord) -> dict:
    return {"id": t.id, "parent_timeline_id": t.parent_id, "branch_point": t.branch_point, "mode": t.mode,
            "rank": t.rank, "coherence": t.coherence, "flags": t.flags, "metadata": t.metadata}


def _dialog(d: DialogRecord) -> dict:
    return {"id": d.id, "timepoint_id": d.timepoint_id, "participants": d.participants, "summary": d.summary,
            "turns": [{"speaker": t.speaker, "content": t.content, "emotional_tone": t.emotional_tone}
                      for t in d.turns]}


def _provenance(run: RunInfo) -> dict:
    return {"model": run.model, "model_license": run.model_license, "seed": run.seed, "cost_usd": run.cost_usd,
            "tokens_in": run.tokens_in, "tokens_out": run.tokens_out, "llm_calls": run.llm_calls,
            "created_at": run.created_at, "finished_at": run.finished_at, "duration_s": run.duration_s,
            "training_safe": run.training_safe, "generator": "timepoint"}


def tdf_record(source: RunStore | RunHistory) -> dict:
    h = RunHistory.of(source)
    run = h.run
    timepoints = [_timepoint(tp) for tp in h.all_timepoints.values()]
    timelines = sorted(h.timelines.values(), key=lambda t: (t.rank is not None, t.rank or 0, t.id))
    record = {
        "@context": CONTEXT, "@type": "RenderedFuture", "tdf_version": TDF_VERSION, "run_id": run.id,
        "scenario": {"template": run.template, "world_id": run.world_id, "title": run.title, "premise": run.premise},
        "temporal_mode": run.mode,
        "entities": [_entity(e) for e in h.entities.values()],
        "timepoints": timepoints,
        "timelines": [_timeline(t) for t in timelines],
        "dialogs": [_dialog(d) for d in h.dialogs.values()],
        "causal_graph": {
            "nodes": [tp["id"] for tp in timepoints],
            "edges": [{"source": s, "target": t, "kind": k} for s, t, k in h.causal_edges],
        },
        "provenance": _provenance(run),
    }
    return {**record, "tdf_hash": tdf_hash(record)}


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    record = tdf_record(store)
    path = out_dir / "run.tdf.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return [path, write_jsonl(out_dir / "run.tdf.jsonl", [record], compression)]
