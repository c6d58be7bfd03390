"""The exporters on a finished run: every record has its schema's shape, says what the store holds,
and compressed files read back the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from timepoint import schemas
from timepoint.export import chat, formatters, tdf, training
from timepoint.export.lines import read_jsonl

EXPORTERS = {"training": training.export, "chat": chat.export, "formatters": formatters.export, "tdf": tdf.export}


@pytest.fixture(scope="module")
def exported(store, tmp_path_factory) -> dict[str, list[Path]]:
    """Each exporter once, uncompressed, into its own directory outside the run's."""
    root = tmp_path_factory.mktemp("export")
    paths = {}
    for name, export in EXPORTERS.items():
        (root / name).mkdir()
        paths[name] = export(store, root / name)
    return paths


def records(paths: list[Path], name: str) -> list[dict]:
    return read_jsonl(next(p for p in paths if p.name == name))


def validator(name: str) -> Draft202012Validator:
    schema = schemas.load(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def assert_valid(name: str, recs: list[dict]) -> None:
    v = validator(name)
    assert recs
    for rec in recs:
        errors = [e.message for e in v.iter_errors(rec)]
        assert not errors, errors


def test_training_records_match_schema(exported):
    assert_valid("training", records(exported["training"], "training.jsonl"))


def test_chat_record_per_turn_ending_in_it(exported, store):
    recs = records(exported["chat"], "chat.jsonl")
    assert_valid("chat", recs)
    turns = {(t["dialog_id"], t["idx"]): t for t in store.rows("turns")}
    assert len(recs) == len(turns)
    for rec in recs:
        meta, last = rec["metadata"], rec["messages"][-1]
        turn = turns[(meta["dialog_id"], meta["turn_index"])]
        assert last == {"role": "assistant", "content": turn["content"]}
        assert meta["speaker"] == turn["speaker"]
        roles = [m["role"] for m in rec["messages"]]
        assert roles[0] == "system" and roles[1:] == ["user", "assistant"] * (len(roles) // 2)  # alternating
        history = "\n".join(m["content"] for m in rec["messages"][1:-1])
        earlier = [t for (d, i), t in turns.items() if d == meta["dialog_id"] and i < turn["idx"]]
        assert all(t["content"] in history for t in earlier)


WRONG_SHAPES = {
    "training": [
        lambda r: {**r, "completion": json.loads(r["completion"])},
        lambda r: {**r, "metadata": {**r["metadata"], "training_safe": "yes"}},
        lambda r: {k: x for k, x in r.items() if k != "prompt"},
    ],
    "chat": [
        lambda r: {**r, "messages": r["messages"][:1]},
        lambda r: {**r, "messages": r["messages"][1:]},
        lambda r: {**r, "messages": [*r["messages"][:-1], {"role": "narrator", "content": "x"}]},
        lambda r: {**r, "messages": [m for m in r["messages"] if m["role"] != "assistant"]},
        lambda r: {"messages": r["messages"]},
    ],
    "tdf": [
        lambda r: {k: x for k, x in r.items() if k != "causal_graph"},
        lambda r: {**r, "tdf_hash": "not-a-hash"},
        lambda r: {**r, "timepoints": [{**r["timepoints"][0], "index": "0"}]},
        lambda r: {**r, "entities": [{**r["entities"][0], "tensor": {"context": [0.5]}}]},
    ],
}
FILES = {"training": ("training", "training.jsonl"), "chat": ("chat", "chat.jsonl"), "tdf": ("tdf", "run.tdf.jsonl")}


@pytest.mark.parametrize("name", WRONG_SHAPES)
def test_schemas_reject_wrong_shapes(exported, name):
    """A file's last record is a later turn of a dialog, so dropping messages from it still leaves some."""
    v, good = validator(name), records(exported[FILES[name][0]], FILES[name][1])[-1]
    assert v.is_valid(good)
    for wrong in WRONG_SHAPES[name]:
        assert not v.is_valid(wrong(good))


def test_dialog_synthesis_transcript_is_the_real_dialog(exported, store):
    recs = records(exported["formatters"], "dialog_synthesis.jsonl")
    assert len(recs) == len(store.rows("dialogs"))
    for rec in recs:
        said = [(t["speaker"], t["content"]) for t in json.loads(rec["completion"])["transcript"]]
        stored = [(t["speaker"], t["content"]) for t in store.rows("turns", "idx")
                  if t["dialog_id"] == rec["metadata"]["dialog_id"]]
        assert said == stored


def test_knowledge_flow_follows_what_was_told(exported, store):
    recs = [json.loads(r["completion"]) for r in records(exported["formatters"], "knowledge_flow.jsonl")]
    told = [e for e in store.rows("exposure_events", "id") if e["event_type"] == "told"]
    assert [(r["learner"], r["source"], r["information"]) for r in recs if r["event_type"] == "told"] == \
        [(e["entity_id"], e["source"], e["information"]) for e in told]


def test_relationship_dynamics_changes_add_up(exported, store):
    """Each pair's change is from its state going in: the previous timepoint's, or the opening snapshot's."""
    recs = records(exported["formatters"], "relationship_dynamics.jsonl")
    stored = {(r["entity_a"], r["entity_b"], r["timepoint_id"]): r for r in store.rows("relationship_states")}
    last = {}
    for rec in recs:
        meta, now = rec["metadata"], json.loads(rec["completion"])
        pair = (meta["entity_a"], meta["entity_b"])
        before = last[pair] if pair in last else stored[(*pair, "pre_tp_000")]
        assert meta["previous_timepoint_id"] == (last[pair]["at"] if pair in last else "pre_tp_000")
        assert now["change"]["trust"] == pytest.approx(now["trust"] - before["trust"], abs=1e-4)
        last[pair] = {**now, "at": meta["timepoint_id"]}


def test_tdf_record_hash_and_causal_links(exported):
    (rec,) = records(exported["tdf"], "run.tdf.jsonl")
    assert rec == json.loads(next(p for p in exported["tdf"] if p.name == "run.tdf.json").read_text())
    assert_valid("tdf", [rec])
    assert tdf.tdf_hash(rec) == rec["tdf_hash"]
    ids = {tp["id"] for tp in rec["timepoints"]}
    assert {tp["causal_parent"] for tp in rec["timepoints"]} - {None} <= ids
    assert all(e["source"] in ids and e["target"] in ids for e in rec["causal_graph"]["edges"])


@pytest.mark.parametrize("alter", [
    lambda r: r["timepoints"][0].update(event=r["timepoints"][0]["event"] + "!"),
    lambda r: r["provenance"].update(seed=r["provenance"]["seed"] + 1),
    lambda r: r["dialogs"][0]["turns"][0].update(content=""),
    lambda r: r.update(run_id="another"),
])
def test_tdf_hash_changes_with_any_field(exported, alter):
    (rec,) = records(exported["tdf"], "run.tdf.jsonl")
    alter(rec)
    assert tdf.tdf_hash(rec) != rec["tdf_hash"]


@pytest.mark.parametrize("compression", ["gzip", "bz2"])
def test_compressed_exports_read_back_the_same(exported, store, tmp_path, compression):
    for name, export in EXPORTERS.items():
        (tmp_path / name).mkdir()
        plain = {p.name: p for p in exported[name] if p.name.endswith(".jsonl")}
        packed = [p for p in export(store, tmp_path / name, compression) if p.suffix in (".gz", ".bz2")]
        assert sorted(p.name for p in packed) == sorted(n + {"gzip": ".gz", "bz2": ".bz2"}[compression] for n in plain)
        for path in packed:
            assert read_jsonl(path) == read_jsonl(plain[path.name.rsplit(".", 1)[0]])
