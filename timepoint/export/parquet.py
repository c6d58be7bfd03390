"""Parquet tables for analytics, each with an explicit schema so every run's files agree on types.

Conversions from the store: integers are int64, reals float64, the training_safe flag bool; JSON
arrays (traits, goals, speech_examples, entities_present, knowledge_references, mechanisms) become
list<string>; an entity's tensor becomes three list<float64> columns, tensor_context (8),
tensor_biology (4) and tensor_behavior (8); other JSON objects (voice_guide, cognitive, physical,
mind, params, metadata) stay JSON text. Timestamps stay ISO 8601 strings: story times carry
whatever offset, or none, the scenario gave them, and the string keeps that exactly.
Every table has the run's run_id; dialog_turns carries its dialog's timepoint_id.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..store import RunStore
from .training import training_records

STR, INT, FLOAT, BOOL = pa.string(), pa.int64(), pa.float64(), pa.bool_()
STRS, FLOATS = pa.list_(STR), pa.list_(FLOAT)
TENSOR_PARTS = ("context", "biology", "behavior")

SCHEMAS = {
    "entities": pa.schema([
        ("run_id", STR), ("entity_id", STR), ("name", STR), ("entity_type", STR), ("role", STR), ("title", STR),
        ("description", STR), ("traits", STRS), ("goals", STRS), ("voice_guide", STR), ("speech_examples", STRS),
        ("resolution", STR), *((f"tensor_{part}", FLOATS) for part in TENSOR_PARTS), ("cognitive", STR),
        ("physical", STR), ("mind", STR)]),
    "timepoints": pa.schema([
        ("run_id", STR), ("timepoint_id", STR), ("idx", INT), ("timeline_id", STR), ("timestamp", STR),
        ("event", STR), ("entities_present", STRS), ("causal_parent", STR), ("causal_link", STR),
        ("importance", FLOAT), ("metadata", STR)]),
    "dialog_turns": pa.schema([
        ("run_id", STR), ("dialog_id", STR), ("timepoint_id", STR), ("idx", INT), ("speaker", STR),
        ("content", STR), ("emotional_tone", STR), ("knowledge_references", STRS), ("params", STR),
        ("dialog_move", STR), ("move_target", STR)]),
    "exposure_events": pa.schema([
        ("id", INT), ("run_id", STR), ("entity_id", STR), ("event_type", STR), ("information", STR),
        ("source", STR), ("timestamp", STR), ("confidence", FLOAT), ("timepoint_id", STR)]),
    "training_examples": pa.schema([
        ("run_id", STR), ("prompt", STR), ("completion", STR), ("entity_id", STR), ("timepoint_id", STR),
        ("temporal_mode", STR), ("template", STR), ("model", STR), ("training_safe", BOOL), ("mechanisms", STRS)]),
}


def _entities(store: RunStore) -> list[dict]:
    """The tensor's three vectors as columns of their own, ready for numeric work."""
    rows = []
    for row in store.rows("entities"):
        tensor = json.loads(row.pop("tensor"))
        rows.append({**row, **{f"tensor_{part}": tensor[part] for part in TENSOR_PARTS}})
    return rows


def _dialog_turns(store: RunStore) -> list[dict]:
    """Turns with their dialog's timepoint, so they join to timepoints without the dialogs table."""
    timepoint_of = {d["dialog_id"]: d["timepoint_id"] for d in store.rows("dialogs")}
    return [{**t, "timepoint_id": timepoint_of.get(t["dialog_id"])} for t in store.rows("turns", "dialog_id, idx")]


def _training_examples(store: RunStore) -> list[dict]:
    return [{**r["metadata"], "run_id": store.run_id, "prompt": r["prompt"], "completion": r["completion"]}
            for r in training_records(store)]


ROWS: dict[str, Callable[[RunStore], list[dict]]] = {
    "entities": _entities,
    "timepoints": lambda store: store.rows("timepoints"),
    "dialog_turns": _dialog_turns,
    "exposure_events": lambda store: store.rows("exposure_events", "id"),
    "training_examples": _training_examples,
}


def _decode_lists(row: dict, schema: pa.Schema) -> dict:
    """JSON array text → Python lists, so list columns land as Parquet lists."""
    lists = {f.name for f in schema if pa.types.is_list(f.type)}
    return {k: json.loads(v) if k in lists and isinstance(v, str) else v for k, v in row.items()}


def table(store: RunStore, name: str) -> pa.Table:
    """One Parquet table; columns not in its schema (e.g. a record's seed) are left out."""
    schema = SCHEMAS[name]
    return pa.Table.from_pylist([_decode_lists(row, schema) for row in ROWS[name](store)], schema=schema)


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    """Parquet compresses inside the file (zstd), so the line formats' `compression` does not apply."""
    target = out_dir / "parquet"
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in SCHEMAS:
        paths.append(target / f"{name}.parquet")
        pq.write_table(table(store, name), paths[-1], compression="zstd")
    return paths
