"""One transaction per step (principle 3): a timepoint's writes reach the store together or not at all,
no other connection sees half of one, the call ledger keeps every call whatever became of its step,
and rows land in their columns by name whatever order ALTER TABLE left a table's columns in."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from conftest import new_simulation

from timepoint.engine import execute
from timepoint.llm.request import CallRecord
from timepoint.migrations import migrate
from timepoint.modes.common import live_through
from timepoint.store import MIGRATIONS, TABLES, RunStore
from timepoint.world import Timepoint

# Where each table says which timepoint a row belongs to (turns belong to it through their dialog).
AT_TIMEPOINT = {"timepoints": "timepoint_id", "exposure_events": "timepoint_id", "dialogs": "timepoint_id",
                "mechanism_usage": "timepoint_id", "entity_states": "timepoint_id",
                "relationship_states": "timepoint_id", "gaps": "timepoint_id", "causal_edges": "target"}


def rows_at(db: sqlite3.Connection, tp_id: str) -> dict[str, int]:
    """How many rows of each table belong to `tp_id`, as `db` sees them."""
    counts = {t: db.execute(f"SELECT COUNT(*) FROM {t} WHERE {col} = ?", (tp_id,)).fetchone()[0]
              for t, col in AT_TIMEPOINT.items()}
    counts["turns"] = db.execute("SELECT COUNT(*) FROM turns WHERE dialog_id IN "
                                 "(SELECT dialog_id FROM dialogs WHERE timepoint_id = ?)", (tp_id,)).fetchone()[0]
    return counts


def everything(db: sqlite3.Connection) -> dict[str, list[tuple]]:
    return {t: db.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in TABLES}


def timepoints(sim) -> list[Timepoint]:
    ids = list(sim.entities)
    first = Timepoint(id="tp_000", index=0, timestamp=sim.time_of(0), event=sim.opening_event, entities_present=ids)
    second = Timepoint(id="tp_001", index=1, timestamp=sim.time_of(1), event="The vote is called.",
                       entities_present=ids, causal_parent="tp_000", causal_link="the debate ran out")
    return [first, second]


def reader(store: RunStore) -> sqlite3.Connection:
    """A second connection: it sees what the store has committed, nothing more."""
    return sqlite3.connect(store.path)


class Failing(RuntimeError):
    pass


def test_a_timepoint_that_fails_leaves_nothing_and_the_timepoints_before_it_stand(tmp_path):
    async def go():
        sim = await new_simulation(tmp_path)
        made: list[CallRecord] = []
        ledger = sim.gateway.on_call
        sim.gateway.on_call = lambda call: (made.append(call), ledger(call))
        calls_before = reader(sim.store).execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0]
        first, second = timepoints(sim)
        await live_through(sim, first)
        kept = everything(reader(sim.store))
        calls_after_first, written = len(made), {}

        snapshot_states = sim.store.snapshot_states

        def fail_at_the_end(tp_id, *rest):  # a timepoint's last write: everything else is written by then
            snapshot_states(tp_id, *rest)
            written.update(rows_at(sim.store.db, tp_id))
            raise Failing("the disk filled up")
        sim.store.snapshot_states = fail_at_the_end
        with pytest.raises(Failing):
            await live_through(sim, second)
        return sim, kept, written, calls_before, calls_after_first, made
    sim, kept, written, calls_before, calls_after_first, made = asyncio.run(go())

    assert all(written[t] for t in ("timepoints", "exposure_events", "dialogs", "turns", "mechanism_usage",
                                    "entity_states", "relationship_states", "causal_edges")), written
    db = reader(sim.store)
    assert set(rows_at(db, "tp_001").values()) == {0}
    assert set(rows_at(sim.store.db, "tp_001").values()) == {0}
    now = everything(db)
    assert {t: rows for t, rows in now.items() if t not in ("llm_calls", "runs")} == \
        {t: rows for t, rows in kept.items() if t not in ("llm_calls", "runs")}
    assert len(made) > calls_after_first, "the failed timepoint made calls"
    assert db.execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0] == calls_before + len(made)
    assert db.execute("SELECT llm_calls FROM runs").fetchone()[0] == calls_before + len(made)


def test_a_reader_sees_none_of_a_timepoint_before_it_commits(tmp_path):
    async def go():
        sim = await new_simulation(tmp_path)
        first, _ = timepoints(sim)
        seen = {}

        snapshot_states = sim.store.snapshot_states

        def look(tp_id, *rest):  # a timepoint's last write, still inside its step
            snapshot_states(tp_id, *rest)
            seen["writer"], seen["reader"] = rows_at(sim.store.db, tp_id), rows_at(reader(sim.store), tp_id)
        sim.store.snapshot_states = look
        await live_through(sim, first)
        return sim, seen
    sim, seen = asyncio.run(go())

    assert seen["writer"]["timepoints"] == 1 and seen["writer"]["turns"] >= 2
    assert set(seen["reader"].values()) == {0}
    assert rows_at(reader(sim.store), "tp_000") == seen["writer"]


@pytest.fixture
def store(tmp_path) -> RunStore:
    opened = RunStore(tmp_path / "run.db", "run_steps")
    opened.begin_run(mode="forward")
    yield opened
    opened.close()


def gap_units(store: RunStore) -> list[str]:
    return [u for (u,) in reader(store).execute("SELECT unit FROM gaps ORDER BY id")]


def test_outside_a_step_every_write_commits_itself(store):
    store.record_gap("turn", "no answer")
    assert gap_units(store) == ["turn"]


def test_a_nested_step_that_fails_takes_back_only_its_own_writes(store):
    with store.step():
        store.record_gap("before", "r")
        with pytest.raises(Failing), store.step():
            store.record_gap("inner", "r")
            raise Failing
        store.record_gap("after", "r")
        assert gap_units(store) == [], "nothing is seen before the outermost step commits"
    assert gap_units(store) == ["before", "after"]


def test_a_failing_step_takes_back_the_nested_steps_that_finished_inside_it(store):
    with pytest.raises(Failing), store.step():
        with store.step():
            store.record_gap("inner", "r")
        raise Failing
    assert gap_units(store) == []
    store.record_gap("later", "r")
    assert gap_units(store) == ["later"], "the store writes on after a rollback"


def call(cost: float) -> CallRecord:
    return CallRecord(role="dialog", provider="test", model="test", request_key="k", tokens_in=10, tokens_out=5,
                      cost_usd=cost)


def test_a_call_made_in_a_step_that_rolls_back_keeps_its_row(store):
    with pytest.raises(Failing), store.step():
        store.record_gap("turn", "r")
        store.record_call(call(0.25))
        raise Failing
    with store.step():
        store.record_call(call(0.5))
    db = reader(store)
    assert gap_units(store) == []
    assert [c for (c,) in db.execute("SELECT cost_usd FROM llm_calls ORDER BY id")] == [0.25, 0.5]
    assert tuple(db.execute("SELECT llm_calls, tokens_in, cost_usd FROM runs").fetchone()) == (2, 20, 0.75)


def test_steps_that_overlap_across_tasks_are_refused(store):
    async def overlapping():
        a_open, b_open = asyncio.Event(), asyncio.Event()

        async def a():
            with store.step():
                store.record_gap("a", "r")
                a_open.set()
                await b_open.wait()

        async def b():
            await a_open.wait()
            with store.step():
                b_open.set()
                await asyncio.sleep(0.01)
        return await asyncio.gather(a(), b(), return_exceptions=True)
    outcomes = asyncio.run(overlapping())

    assert all(isinstance(o, RuntimeError) for o in outcomes), outcomes
    assert "overlap" in str(outcomes[0])
    assert gap_units(store) == []
    store.record_gap("later", "r")
    assert gap_units(store) == ["later"]


def columns_added_in_reverse(db: sqlite3.Connection, table: str) -> None:
    """Rebuild `table` empty as a long-lived store may have it: its key in CREATE TABLE, every other
    column added later by ALTER TABLE, in the reverse of the order the migrations give."""
    info = db.execute(f"PRAGMA table_info({table})").fetchall()
    keys = sorted((c for c in info if c[5]), key=lambda c: c[5])
    others = [c for c in info if not c[5]]
    db.execute(f"DROP TABLE {table}")
    if [k[1] for k in keys] == ["id"]:
        db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY AUTOINCREMENT)")
    else:
        db.execute(f"CREATE TABLE {table} ({', '.join(f'{k[1]} {k[2]}' for k in keys)}, "
                   f"PRIMARY KEY ({', '.join(k[1] for k in keys)}))")
    for _, name, kind, _, default, _ in reversed(others):
        db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}" + (f" DEFAULT {default}" if default else ""))


def reordered_store(path: Path) -> None:
    path.parent.mkdir(parents=True)
    db = sqlite3.connect(path)
    migrate(db, MIGRATIONS)
    for table in TABLES:
        columns_added_in_reverse(db, table)
    db.commit()
    db.close()


VARIES = {"run_id", "created_at", "finished_at", "duration_s", "latency_ms", "config_json"}


def by_name(run_dir: Path) -> dict[str, list[dict]]:
    """Every table's rows as column → value, less what differs between two runs of one config."""
    db = sqlite3.connect(run_dir / "run.db")
    db.row_factory = sqlite3.Row
    return {t: [{k: r[k] for k in r.keys() if k not in VARIES} for r in db.execute(f"SELECT * FROM {t} ORDER BY rowid")]
            for t in TABLES}


SHADOW = {"entity_id": "nadia_brennan", "timepoint_id": "tp_001", "phi": 0.4, "predicted_band": "scene",
          "actual_resolution": "dialog", "divergence": 1, "continuous_divergence": 0.25}


def test_rows_land_by_name_in_tables_whose_columns_were_added_in_another_order(tmp_path):
    from timepoint.__main__ import prepared
    run = prepared(["model=test", "template=board_meeting", "mode=branching", f"paths.home={tmp_path / 'home'}",
                    "cache.mode=off"])
    reordered_store(tmp_path / "reordered" / "run.db")
    for name in ("usual", "reordered"):
        asyncio.run(execute(run, tmp_path / name, "{}"))
        store = RunStore(tmp_path / name / "run.db")
        store.save_shadow([SHADOW], {"nadia_brennan": {"mse": 0.01}})  # this template's entities have no ADPRS
        store.close()

    usual, reordered = by_name(tmp_path / "usual"), by_name(tmp_path / "reordered")
    order = [c[1] for c in sqlite3.connect(tmp_path / "reordered" / "run.db").execute("PRAGMA table_info(dialogs)")]
    assert order[:3] == ["run_id", "dialog_id", "voice_distinctiveness"], "the columns really are reordered"
    assert all(usual[t] for t in ("timelines", "timepoints", "causal_edges", "dialogs", "turns", "relationships",
                                  "relationship_states", "entity_states", "shadow_evaluations")), \
        {t: len(rows) for t, rows in usual.items()}
    assert reordered == usual


def test_a_run_that_fails_inside_a_timepoint_keeps_the_ones_before_and_says_it_failed(tmp_path, monkeypatch):
    from timepoint.__main__ import prepared
    run = prepared(["model=test", "template=board_meeting", f"paths.home={tmp_path / 'home'}", "cache.mode=off"])
    snapshot_states = RunStore.snapshot_states

    def fail_at_the_second(self, tp_id, index, *rest):
        if index == 1:
            raise Failing("the disk filled up")
        snapshot_states(self, tp_id, index, *rest)
    monkeypatch.setattr(RunStore, "snapshot_states", fail_at_the_second)
    with pytest.raises(Failing):
        asyncio.run(execute(run, tmp_path / "run", "{}"))

    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    assert summary["status"] == "failed" and "the disk filled up" in summary["error"]
    db = sqlite3.connect(tmp_path / "run" / "run.db")
    assert [t for (t,) in db.execute("SELECT timepoint_id FROM timepoints")] == ["tp_000"]
    assert set(rows_at(db, "tp_001").values()) == {0}
    calls = (tmp_path / "run" / "calls.jsonl").read_text().splitlines()
    assert db.execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0] == len(calls)
    assert db.execute("SELECT llm_calls FROM runs").fetchone()[0] == len(calls)
