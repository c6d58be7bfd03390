"""The SQLite run store (the truth of a run) and the catalog that indexes every run.

Everything a run produces is written here as it happens, one transaction per step, so an
interrupted run keeps its finished work and exporters can read any past run.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .errors import UserError
from .llm.request import CallRecord
from .migrations import migrate
from .world import Dialog, Entity, ExposureEvent, Relationship, Timepoint

# Numbered migrations: a store at user_version N gets migrations N.. applied in order.
MIGRATIONS = [
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, template TEXT, world_id TEXT, title TEXT, premise TEXT,
        location TEXT, mode TEXT, model TEXT, model_license TEXT, training_safe INTEGER, seed INTEGER,
        status TEXT, error TEXT, created_at TEXT, finished_at TEXT, duration_s REAL,
        llm_calls INTEGER DEFAULT 0, cached_calls INTEGER DEFAULT 0,
        tokens_in INTEGER DEFAULT 0, tokens_out INTEGER DEFAULT 0, cost_usd REAL DEFAULT 0,
        est_calls INTEGER, est_tokens INTEGER, est_cost_usd REAL, config_json TEXT
    );
    CREATE TABLE entities (
        run_id TEXT, entity_id TEXT, name TEXT, entity_type TEXT, role TEXT, title TEXT,
        description TEXT, traits TEXT, goals TEXT, voice_guide TEXT, speech_examples TEXT,
        resolution TEXT, tensor TEXT, cognitive TEXT, physical TEXT,
        PRIMARY KEY (run_id, entity_id)
    );
    CREATE TABLE entity_states (
        run_id TEXT, entity_id TEXT, timepoint_id TEXT, seq INTEGER,
        tensor TEXT, cognitive TEXT, physical TEXT, knowledge_count INTEGER,
        PRIMARY KEY (run_id, entity_id, timepoint_id)
    );
    CREATE TABLE relationships (
        run_id TEXT, entity_a TEXT, entity_b TEXT, rel_type TEXT, trust REAL, alignment REAL,
        PRIMARY KEY (run_id, entity_a, entity_b)
    );
    CREATE TABLE timepoints (
        run_id TEXT, timepoint_id TEXT, idx INTEGER, timeline_id TEXT, timestamp TEXT,
        event TEXT, entities_present TEXT, causal_parent TEXT, causal_link TEXT, importance REAL,
        PRIMARY KEY (run_id, timepoint_id)
    );
    CREATE TABLE causal_edges (
        run_id TEXT, source TEXT, target TEXT, kind TEXT,
        PRIMARY KEY (run_id, source, target, kind)
    );
    CREATE TABLE dialogs (
        run_id TEXT, dialog_id TEXT, timepoint_id TEXT, participants TEXT, summary TEXT,
        turn_count INTEGER, PRIMARY KEY (run_id, dialog_id)
    );
    CREATE TABLE turns (
        run_id TEXT, dialog_id TEXT, idx INTEGER, speaker TEXT, content TEXT,
        emotional_tone TEXT, knowledge_references TEXT, params TEXT,
        PRIMARY KEY (run_id, dialog_id, idx)
    );
    CREATE TABLE exposure_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, entity_id TEXT, event_type TEXT,
        information TEXT, source TEXT, timestamp TEXT, confidence REAL, timepoint_id TEXT
    );
    CREATE TABLE llm_calls (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, role TEXT, provider TEXT, model TEXT,
        request_key TEXT, tokens_in INTEGER, tokens_out INTEGER, cost_usd REAL, latency_ms REAL,
        cached INTEGER, attempts INTEGER, error TEXT, created_at TEXT
    );
    CREATE TABLE mechanism_usage (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, mechanism TEXT, hook TEXT,
        timepoint_id TEXT, created_at TEXT
    );
    """,
    """
    ALTER TABLE entities ADD COLUMN mind TEXT;
    ALTER TABLE relationships ADD COLUMN interactions INTEGER DEFAULT 0;
    ALTER TABLE turns ADD COLUMN dialog_move TEXT;
    ALTER TABLE turns ADD COLUMN move_target TEXT;
    ALTER TABLE dialogs ADD COLUMN ending TEXT;
    ALTER TABLE dialogs ADD COLUMN mood TEXT;
    ALTER TABLE dialogs ADD COLUMN quality_score REAL;
    ALTER TABLE dialogs ADD COLUMN quality_passed INTEGER;
    ALTER TABLE dialogs ADD COLUMN quality_checks TEXT;
    ALTER TABLE dialogs ADD COLUMN semantic TEXT;
    ALTER TABLE dialogs ADD COLUMN voice_distinctiveness REAL;
    CREATE TABLE relationship_states (
        run_id TEXT, entity_a TEXT, entity_b TEXT, timepoint_id TEXT, trust REAL, alignment REAL,
        interactions INTEGER, PRIMARY KEY (run_id, entity_a, entity_b, timepoint_id)
    );
    """,
    """
    CREATE TABLE timelines (
        run_id TEXT, timeline_id TEXT, parent_timeline_id TEXT, branch_point TEXT, mode TEXT,
        rank INTEGER, coherence REAL, flags TEXT, metadata TEXT, PRIMARY KEY (run_id, timeline_id)
    );
    """,
    """
    ALTER TABLE timepoints ADD COLUMN metadata TEXT;
    """,
    """
    ALTER TABLE entity_states ADD COLUMN resolution TEXT;
    """,
    """
    CREATE TABLE validations (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, validator TEXT, severity TEXT,
        entity_id TEXT, timepoint_id TEXT, message TEXT
    );
    """,
    """
    ALTER TABLE entities ADD COLUMN compressed TEXT;
    ALTER TABLE entities ADD COLUMN maturity REAL;
    """,
    """
    ALTER TABLE entities ADD COLUMN query_count INTEGER DEFAULT 0;
    ALTER TABLE entities ADD COLUMN training_count INTEGER DEFAULT 0;
    CREATE TABLE queries (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, entity_id TEXT, question TEXT, intent TEXT,
        answer TEXT, resolution_before TEXT, resolution_after TEXT, created_at TEXT
    );
    """,
    """
    CREATE TABLE shadow_evaluations (
        run_id TEXT, entity_id TEXT, timepoint_id TEXT, phi REAL, predicted_band TEXT, actual_resolution TEXT,
        divergence INTEGER, continuous_divergence REAL, PRIMARY KEY (run_id, entity_id, timepoint_id)
    );
    """,
    """
    CREATE TABLE gaps (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, timepoint_id TEXT, unit TEXT, role TEXT,
        request_key TEXT, reason TEXT, created_at TEXT
    );
    """,
    """
    ALTER TABLE entity_states ADD COLUMN mind TEXT;
    """,
    """
    CREATE TABLE chats (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, session TEXT, channel TEXT, entity_id TEXT,
        as_of TEXT, question TEXT, answer TEXT, context TEXT, created_at TEXT
    );
    """,
    """
    ALTER TABLE runs ADD COLUMN shadow_fits TEXT;
    """,
    """
    ALTER TABLE llm_calls ADD COLUMN tokens_reused INTEGER DEFAULT 0;
    ALTER TABLE runs ADD COLUMN tokens_reused INTEGER DEFAULT 0;
    """,
]

TABLES = ("runs", "entities", "entity_states", "relationships", "relationship_states", "timelines", "timepoints",
          "causal_edges", "dialogs", "turns", "exposure_events", "llm_calls", "mechanism_usage", "validations",
          "queries", "shadow_evaluations", "gaps", "chats")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _connect(path: Path, create: bool = True) -> sqlite3.Connection:
    """`create=False` opens an existing database only (mode=rw): a missing file is an error, never a new one."""
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30)
    else:
        db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=rw", uri=True, timeout=30)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process loses nothing committed
    return db


def insert_rows(db: sqlite3.Connection, table: str, rows: list[dict], conflict: str = "") -> None:
    """Rows by column name (the keys of the first), so they land right in a table whatever order
    ALTER TABLE left its columns in. `conflict` is SQLite's OR clause: "", "REPLACE" or "IGNORE"."""
    if not rows:
        return
    columns = list(rows[0])
    verb = f"INSERT OR {conflict}" if conflict else "INSERT"
    db.executemany(f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                   [tuple(row[c] for c in columns) for row in rows])


class RunStore:
    """One run's `run.db`."""

    def __init__(self, path: Path, run_id: str | None = None, create: bool = True):
        """`create=False` for a finished run: a missing `path` raises FileNotFoundError instead of
        leaving a new empty store behind."""
        self.path = path
        if not create and not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no run store")
        self.db = _connect(path, create)
        self._depth = 0                            # steps open (see step)
        self._held_calls: list[CallRecord] = []    # calls finished while a step is open (see record_call)
        try:
            migrate(self.db, MIGRATIONS)
            self.run_id = run_id or self._only_run_id()
        except BaseException:
            self.db.close()
            raise

    def _only_run_id(self) -> str:
        row = self.db.execute("SELECT run_id FROM runs ORDER BY created_at LIMIT 1").fetchone()
        if row is None:
            raise FileNotFoundError(f"{self.path} holds no run")
        return row[0]

    # -- steps ----------------------------------------------------------------------------

    @contextmanager
    def step(self) -> Iterator[None]:
        """One unit of a run's work (a timepoint lived through, a timeline kept), committed whole or not
        at all, so the store never holds half of one (principle 3). Every write made inside joins one
        transaction, invisible to other connections until the outermost step commits; an exception rolls
        the step back and propagates. A step inside a step is a savepoint: its failure undoes only its own
        writes. Every write method is a step of its own, so outside a step each write commits itself.

        Steps that span awaits must nest, not overlap: concurrent tasks share this one connection, so two
        tasks each holding a step open would tangle their savepoints; that is refused as a RuntimeError."""
        depth = self._depth
        savepoint = f"step_{depth}"
        self.db.execute(f"SAVEPOINT {savepoint}" if depth else "BEGIN IMMEDIATE")
        self._depth += 1
        try:
            yield
            if self._depth != depth + 1:
                raise RuntimeError("store steps overlap: another task opened a step inside this one and has "
                                   "not closed it; steps that span awaits must nest")
            self.db.execute(f"RELEASE {savepoint}" if depth else "COMMIT")
        except BaseException:
            self._undo(savepoint if depth else None)
            raise
        finally:
            self._depth -= 1
            if not self._depth:
                self._write_held_calls()

    def _undo(self, savepoint: str | None) -> None:
        """Take back a failed step: its savepoint, or the whole transaction when it is the outermost."""
        if not self.db.in_transaction:
            return  # some errors (a full disk) end the transaction themselves
        if savepoint:
            self.db.execute(f"ROLLBACK TO {savepoint}")
            self.db.execute(f"RELEASE {savepoint}")
        else:
            self.db.execute("ROLLBACK")

    def _insert(self, table: str, rows: list[dict], conflict: str = "") -> None:
        """This run's rows, by column name."""
        insert_rows(self.db, table, [{"run_id": self.run_id, **row} for row in rows], conflict)

    # -- writes ---------------------------------------------------------------------------

    def begin_run(self, **fields) -> None:
        with self.step():
            self._insert("runs", [{"status": "running", "created_at": now_iso(), **fields}])

    def update_run(self, **fields) -> None:
        with self.step():
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.db.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", [*fields.values(), self.run_id])

    def save_entities(self, entities: list[Entity]) -> None:
        with self.step():
            self._insert("entities", [dict(
                entity_id=e.id, name=e.name, entity_type=e.type, role=e.role, title=e.title,
                description=e.description, traits=json.dumps(e.traits), goals=json.dumps(e.goals),
                voice_guide=json.dumps(e.voice_guide), speech_examples=json.dumps(e.speech_examples),
                resolution=e.resolution, tensor=e.tensor.model_dump_json(), cognitive=e.cognitive.model_dump_json(),
                physical=e.physical.model_dump_json(), mind=e.mind.model_dump_json()) for e in entities], "REPLACE")

    def save_relationships(self, relationships: list[Relationship], timepoint_id: str | None = None) -> None:
        """Current relationships; with a timepoint, also their state there (M13 trajectories)."""
        with self.step():
            self._insert("relationships", [dict(
                entity_a=r.a, entity_b=r.b, rel_type=r.type, trust=r.trust, alignment=r.alignment,
                interactions=r.interactions) for r in relationships], "REPLACE")
            if timepoint_id:
                self._insert("relationship_states", [dict(
                    entity_a=r.a, entity_b=r.b, timepoint_id=timepoint_id, trust=r.trust, alignment=r.alignment,
                    interactions=r.interactions) for r in relationships], "REPLACE")

    def save_timeline(self, timeline_id: str, mode: str, rank: int, coherence: float | None = None,
                      flags: list[str] = (), metadata: dict | None = None, parent: str | None = None,
                      branch_point: str | None = None) -> None:
        """A timeline of the run: "main" is the one dialogs and training data follow; rank 0 is the best."""
        with self.step():
            self._insert("timelines", [dict(
                timeline_id=timeline_id, parent_timeline_id=parent, branch_point=branch_point, mode=mode,
                rank=rank, coherence=coherence, flags=json.dumps(list(flags)),
                metadata=json.dumps(metadata or {}))], "REPLACE")

    def save_timepoint(self, tp: Timepoint, causal: bool = True) -> None:
        """A timepoint; with `causal` (M7), also its causal edge from its parent."""
        with self.step():
            self._insert("timepoints", [dict(
                timepoint_id=tp.id, idx=tp.index, timeline_id=tp.timeline_id, timestamp=tp.timestamp.isoformat(),
                event=tp.event, entities_present=json.dumps(tp.entities_present), causal_parent=tp.causal_parent,
                causal_link=tp.causal_link, importance=tp.importance, metadata=json.dumps(tp.metadata))], "REPLACE")
            if causal and tp.causal_parent:
                self._insert("causal_edges", [dict(source=tp.causal_parent, target=tp.id, kind="causes")], "IGNORE")

    def save_dialog(self, dialog: Dialog) -> None:
        with self.step():
            self._insert("dialogs", [dict(
                dialog_id=dialog.id, timepoint_id=dialog.timepoint_id, participants=json.dumps(dialog.participants),
                summary=dialog.summary, turn_count=len(dialog.turns), ending=dialog.ending, mood=dialog.mood,
                quality_score=dialog.quality_score,
                quality_passed=None if dialog.quality_passed is None else int(dialog.quality_passed),
                quality_checks=json.dumps(dialog.quality_checks), semantic=json.dumps(dialog.semantic),
                voice_distinctiveness=dialog.voice_distinctiveness)], "REPLACE")
            self._insert("turns", [dict(
                dialog_id=dialog.id, idx=t.index, speaker=t.speaker, content=t.content,
                emotional_tone=t.emotional_tone, knowledge_references=json.dumps(t.knowledge_references),
                params=json.dumps(t.params, sort_keys=True), dialog_move=t.dialog_move, move_target=t.move_target)
                for t in dialog.turns], "REPLACE")

    def add_exposures(self, events: list[ExposureEvent]) -> None:
        with self.step():
            self._insert("exposure_events", [dict(
                entity_id=e.entity_id, event_type=e.event_type, information=e.information, source=e.source,
                timestamp=e.timestamp.isoformat(), confidence=e.confidence, timepoint_id=e.timepoint_id)
                for e in events])

    def save_compression(self, rows: dict[str, tuple[dict, float]]) -> None:
        """M6: each entity's compressed codes and its tensor's maturity."""
        with self.step():
            self.db.executemany("UPDATE entities SET compressed = ?, maturity = ? WHERE run_id = ? AND entity_id = ?",
                                [(json.dumps(codes), maturity, self.run_id, eid)
                                 for eid, (codes, maturity) in rows.items()])

    def record_query(self, entity_id: str, question: str, intent: str, answer: str, before: str, after: str,
                     trained: bool) -> None:
        """M5: the question, the answer, and the entity's level before and after; its query count and,
        when elevated, its training count go up."""
        with self.step():
            self._insert("queries", [dict(entity_id=entity_id, question=question, intent=intent, answer=answer,
                                          resolution_before=before, resolution_after=after, created_at=now_iso())])
            self.db.execute("UPDATE entities SET query_count = query_count + 1, training_count = training_count + ?,"
                            " resolution = ? WHERE run_id = ? AND entity_id = ?",
                            (int(trained), after, self.run_id, entity_id))

    def record_chat(self, session: str, channel: str, entity_id: str, as_of: str | None, question: str,
                    answer: str, context: str | None) -> None:
        """One exchange with a character (`timepoint chat`, the server's chat API): `as_of` is the
        timepoint it spoke as of (None: the end of the run); `context` a document the user added."""
        with self.step():
            self._insert("chats", [dict(session=session, channel=channel, entity_id=entity_id, as_of=as_of,
                                        question=question, answer=answer, context=context, created_at=now_iso())])

    def save_shadow(self, rows: list[dict], fits: dict) -> None:
        """ADPRS in shadow: per entity and timepoint, φ's band beside the resolution it really had; and the
        envelope fitted to each entity's activation, kept so that no reader has to fit it again."""
        columns = ("entity_id", "timepoint_id", "phi", "predicted_band", "actual_resolution", "divergence",
                   "continuous_divergence")
        with self.step():
            self.db.execute("UPDATE runs SET shadow_fits = ? WHERE run_id = ?", (json.dumps(fits), self.run_id))
            self._insert("shadow_evaluations", [{c: r[c] for c in columns} for r in rows], "REPLACE")

    def add_validations(self, rows: list[dict]) -> None:
        """M4 findings: which validator, how severe, about whom and when, and what it found."""
        with self.step():
            self._insert("validations", [dict(validator=r["validator"], severity=r["severity"],
                                              entity_id=r.get("entity_id"), timepoint_id=r.get("timepoint_id"),
                                              message=r["message"]) for r in rows])

    def remove_exposure(self, entity_id: str, information: str) -> None:
        with self.step():
            self.db.execute("DELETE FROM exposure_events WHERE run_id = ? AND entity_id = ? AND information = ?",
                            (self.run_id, entity_id, information))

    def snapshot_states(self, timepoint_id: str, seq: int, entities: list[Entity],
                        knowledge_counts: dict[str, int]) -> None:
        """Each entity's state at the end of a timepoint, its mind (arc, ledger, what is unspoken) with it:
        the before/after of training records, read "as of" a timepoint by the read side (history.py)."""
        with self.step():
            self._insert("entity_states", [dict(
                entity_id=e.id, timepoint_id=timepoint_id, seq=seq, tensor=e.tensor.model_dump_json(),
                cognitive=e.cognitive.model_dump_json(), physical=e.physical.model_dump_json(),
                knowledge_count=knowledge_counts.get(e.id, 0), resolution=e.resolution,
                mind=e.mind.model_dump_json()) for e in entities], "REPLACE")

    def record_call(self, call: CallRecord) -> None:
        """One ledger row per call, and the run's running totals.

        A call that finishes while a step is open (a dialog's calls, during its timepoint) is held and
        written in a transaction of its own as soon as the step ends, committed or rolled back. It cannot
        join the step: the model layer's concurrent tasks write through this one connection, where every
        write lands in the open transaction, so a step that rolled back would take with it the rows of
        calls that were made and paid for. A second connection cannot write them either while the step
        holds the write lock. Held rows reach the store a step late; calls.jsonl and the response cache
        have every call the moment it finishes."""
        if self._depth:
            self._held_calls.append(call)
        else:
            self._write_calls([call])

    def _write_held_calls(self) -> None:
        """The calls that finished while the last step was open, now that it is over (see record_call)."""
        held, self._held_calls = self._held_calls, []
        if held:
            self._write_calls(held)

    def _write_calls(self, calls: list[CallRecord]) -> None:
        with self.step():
            for c in calls:
                self._insert("llm_calls", [dict(
                    role=c.role, provider=c.provider, model=c.model, request_key=c.request_key,
                    tokens_in=c.tokens_in, tokens_out=c.tokens_out, tokens_reused=c.tokens_reused, cost_usd=c.cost_usd,
                    latency_ms=round(c.latency_ms, 1), cached=int(c.cached), attempts=c.attempts, error=c.error,
                    created_at=now_iso())])
                self.db.execute(
                    "UPDATE runs SET llm_calls = llm_calls + 1, cached_calls = cached_calls + ?,"
                    " tokens_in = tokens_in + ?, tokens_out = tokens_out + ?, tokens_reused = tokens_reused + ?,"
                    " cost_usd = cost_usd + ? WHERE run_id = ?",
                    (int(c.cached), c.tokens_in, c.tokens_out, c.tokens_reused, c.cost_usd, self.run_id))

    def record_gap(self, unit: str, reason: str, timepoint_id: str | None = None, role: str | None = None,
                   request_key: str | None = None) -> None:
        """Work the run skipped because a call failed for good: what, where, which call, why."""
        with self.step():
            self._insert("gaps", [dict(timepoint_id=timepoint_id, unit=unit, role=role, request_key=request_key,
                                       reason=reason, created_at=now_iso())])

    def record_mechanism(self, mechanism: str, hook: str, timepoint_id: str | None = None) -> None:
        with self.step():
            self._insert("mechanism_usage", [dict(mechanism=mechanism, hook=hook, timepoint_id=timepoint_id,
                                                  created_at=now_iso())])

    # -- reads ----------------------------------------------------------------------------

    def rows(self, table: str, order: str = "rowid") -> list[dict]:
        if table not in TABLES:
            raise ValueError(f"no table {table!r}")
        cur = self.db.execute(f"SELECT * FROM {table} WHERE run_id = ? ORDER BY {order}", (self.run_id,))
        return [dict(r) for r in cur]

    def run(self) -> dict:
        return self.rows("runs")[0]

    def counts(self) -> dict[str, int]:
        """Timepoints are those of the main timeline; other paths and branches count as timelines."""
        def count(table: str, where: str = "") -> int:
            return self.db.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = ? {where}",
                                   (self.run_id,)).fetchone()[0]
        counts = {t: count(t) for t in ("entities", "dialogs", "turns", "exposure_events", "gaps")}
        return {**counts, "timepoints": count("timepoints", "AND timeline_id = 'main'"),
                "timelines": count("timelines")}

    def close(self) -> None:
        self.db.close()


def open_run(run_dir: Path) -> RunStore:
    """The store of a run that already exists (export, query, diff, convergence): a directory without a
    readable run.db is a UserError naming it; nothing is created."""
    path = Path(run_dir) / "run.db"
    if not path.is_file():
        raise UserError(f"run: {run_dir} holds no run.db; give a run directory, a run id or 'last' "
                        "(see `timepoint list runs`)")
    try:
        return RunStore(path, create=False)
    except (FileNotFoundError, sqlite3.DatabaseError) as exc:
        raise UserError(f"run: {path} is not a readable run store: {exc}") from None


CATALOG_MIGRATIONS = [
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, status TEXT, template TEXT, mode TEXT, model TEXT,
        cost_usd REAL DEFAULT 0, llm_calls INTEGER DEFAULT 0, tokens INTEGER DEFAULT 0,
        created_at TEXT, finished_at TEXT, run_dir TEXT
    );
    """,
    """
    ALTER TABLE runs ADD COLUMN records INTEGER;
    CREATE INDEX runs_created ON runs (created_at, run_id);
    """,
]


class Catalog:
    """`<paths.home>/catalog.db`: one row per run, wherever its directory is."""

    def __init__(self, path: Path):
        self.db = _connect(path)
        migrate(self.db, CATALOG_MIGRATIONS)

    def upsert(self, **row) -> None:
        cols = ", ".join(row)
        updates = ", ".join(f"{k} = excluded.{k}" for k in row if k != "run_id")
        with self.db:
            self.db.execute(f"INSERT INTO runs ({cols}) VALUES ({', '.join('?' * len(row))}) "
                            f"ON CONFLICT(run_id) DO UPDATE SET {updates}", list(row.values()))

    def runs(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM runs ORDER BY created_at, run_id")]

    def close(self) -> None:
        self.db.close()
