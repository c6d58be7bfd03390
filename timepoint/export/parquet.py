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

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..history import RunHistory
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


def _entities(h: RunHistory, lists: tuple[str, ...]) -> list[dict]:
    """The tensor's three vectors as columns of their own, ready for numeric work."""
    rows = []
    for row in h.table("entities", decode=(*lists, "tensor")):
        tensor = row.pop("tensor") or {}
        rows.append({**row, **{f"tensor_{part}": tensor.get(part) for part in TENSOR_PARTS}})
    return rows


def _dialog_turns(h: RunHistory, lists: tuple[str, ...]) -> list[dict]:
    """Turns with their dialog's timepoint, so they join to timepoints without the dialogs table."""
    timepoint_of = {d.id: d.timepoint_id for d in h.dialogs.values()}
    return [{**t, "timepoint_id": timepoint_of.get(t["dialog_id"])} for t in h.table("turns", decode=lists)]


def _training_examples(h: RunHistory, lists: tuple[str, ...]) -> list[dict]:
    return [{**r["metadata"], "run_id": h.run.id, "prompt": r["prompt"], "completion": r["completion"]}
            for r in training_records(h)]


ROWS: dict[str, Callable[[RunHistory, tuple[str, ...]], list[dict]]] = {
    "entities": _entities,
    "timepoints": lambda h, lists: h.table("timepoints", decode=lists),
    "dialog_turns": _dialog_turns,
    "exposure_events": lambda h, lists: h.table("exposure_events", decode=lists),
    "training_examples": _training_examples,
}


def table(source: RunStore | RunHistory, name: str) -> pa.Table:
    """One Parquet table; columns not in its schema (e.g. a record's seed) are left out. The schema's list
    columns are JSON arrays in the store, decoded by the read side."""
    schema = SCHEMAS[name]
    lists = tuple(f.name for f in schema if pa.types.is_list(f.type) and not f.name.startswith("tensor_"))
    return pa.Table.from_pylist(ROWS[name](RunHistory.of(source), lists), schema=schema)


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    """Parquet compresses inside the file (zstd), so the line formats' `compression` does not apply."""
    target = out_dir / "parquet"
    target.mkdir(parents=True, exist_ok=True)
    paths, h = [], RunHistory(store)
    for name in SCHEMAS:
        paths.append(target / f"{name}.parquet")
        pq.write_table(table(h, name), paths[-1], compression="zstd")
    return paths
