"""The SQLite run store (the truth of a run) and the catalog that indexes every run.

Everything a run produces is written here as it happens, one transaction per step, so an
interrupted run keeps its finished work and exporters can read any past run.
"""

from __future__ import annotations

import json
import sqlite3
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


class RunStore:
    """One run's `run.db`."""

    def __init__(self, path: Path, run_id: str | None = None, create: bool = True):
        """`create=False` for a finished run: a missing `path` raises FileNotFoundError instead of
        leaving a new empty store behind."""
        self.path = path
        if not create and not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no run store")
        self.db = _connect(path, create)
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

    # -- writes ---------------------------------------------------------------------------

    def begin_run(self, **fields) -> None:
        with self.db:
            cols = ["run_id", "status", "created_at", *fields]
            self.db.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                            [self.run_id, "running", now_iso(), *fields.values()])

    def update_run(self, **fields) -> None:
        with self.db:
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.db.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", [*fields.values(), self.run_id])

    def save_entities(self, entities: list[Entity]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO entities (run_id, entity_id, name, entity_type, role, title, description,"
                " traits, goals, voice_guide, speech_examples, resolution, tensor, cognitive, physical, mind)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(self.run_id, e.id, e.name, e.type, e.role, e.title, e.description, json.dumps(e.traits),
                  json.dumps(e.goals), json.dumps(e.voice_guide), json.dumps(e.speech_examples), e.resolution,
                  e.tensor.model_dump_json(), e.cognitive.model_dump_json(), e.physical.model_dump_json(),
                  e.mind.model_dump_json()) for e in entities])

    def save_relationships(self, relationships: list[Relationship], timepoint_id: str | None = None) -> None:
        """Current relationships; with a timepoint, also their state there (M13 trajectories)."""
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO relationships VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(self.run_id, r.a, r.b, r.type, r.trust, r.alignment, r.interactions) for r in relationships])
            if timepoint_id:
                self.db.executemany(
                    "INSERT OR REPLACE INTO relationship_states VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(self.run_id, r.a, r.b, timepoint_id, r.trust, r.alignment, r.interactions)
                     for r in relationships])

    def save_timeline(self, timeline_id: str, mode: str, rank: int, coherence: float | None = None,
                      flags: list[str] = (), metadata: dict | None = None, parent: str | None = None,
                      branch_point: str | None = None) -> None:
        """A timeline of the run: "main" is the one dialogs and training data follow; rank 0 is the best."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO timelines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (self.run_id, timeline_id, parent, branch_point, mode, rank, coherence,
                             json.dumps(list(flags)), json.dumps(metadata or {})))

    def save_timepoint(self, tp: Timepoint, causal: bool = True) -> None:
        """A timepoint; with `causal` (M7), also its causal edge from its parent."""
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO timepoints VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.run_id, tp.id, tp.index, tp.timeline_id, tp.timestamp.isoformat(), tp.event,
                 json.dumps(tp.entities_present), tp.causal_parent, tp.causal_link, tp.importance,
                 json.dumps(tp.metadata)))
            if causal and tp.causal_parent:
                self.db.execute("INSERT OR IGNORE INTO causal_edges VALUES (?, ?, ?, ?)",
                                (self.run_id, tp.causal_parent, tp.id, "causes"))

    def save_dialog(self, dialog: Dialog) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO dialogs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.run_id, dialog.id, dialog.timepoint_id, json.dumps(dialog.participants), dialog.summary,
                 len(dialog.turns), dialog.ending, dialog.mood, dialog.quality_score,
                 None if dialog.quality_passed is None else int(dialog.quality_passed),
                 json.dumps(dialog.quality_checks), json.dumps(dialog.semantic), dialog.voice_distinctiveness))
            self.db.executemany(
                "INSERT OR REPLACE INTO turns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(self.run_id, dialog.id, t.index, t.speaker, t.content, t.emotional_tone,
                  json.dumps(t.knowledge_references), json.dumps(t.params, sort_keys=True), t.dialog_move,
                  t.move_target) for t in dialog.turns])

    def add_exposures(self, events: list[ExposureEvent]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT INTO exposure_events (run_id, entity_id, event_type, information, source, timestamp,"
                " confidence, timepoint_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(self.run_id, e.entity_id, e.event_type, e.information, e.source, e.timestamp.isoformat(),
                  e.confidence, e.timepoint_id) for e in events])

    def save_compression(self, rows: dict[str, tuple[dict, float]]) -> None:
        """M6: each entity's compressed codes and its tensor's maturity."""
        with self.db:
            self.db.executemany("UPDATE entities SET compressed = ?, maturity = ? WHERE run_id = ? AND entity_id = ?",
                                [(json.dumps(codes), maturity, self.run_id, eid)
                                 for eid, (codes, maturity) in rows.items()])

    def record_query(self, entity_id: str, question: str, intent: str, answer: str, before: str, after: str,
                     trained: bool) -> None:
        """M5: the question, the answer, and the entity's level before and after; its query count and,
        when elevated, its training count go up."""
        with self.db:
            self.db.execute("INSERT INTO queries (run_id, entity_id, question, intent, answer, resolution_before,"
                            " resolution_after, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (self.run_id, entity_id, question, intent, answer, before, after, now_iso()))
            self.db.execute("UPDATE entities SET query_count = query_count + 1, training_count = training_count + ?,"
                            " resolution = ? WHERE run_id = ? AND entity_id = ?",
                            (int(trained), after, self.run_id, entity_id))

    def record_chat(self, session: str, channel: str, entity_id: str, as_of: str | None, question: str,
                    answer: str, context: str | None) -> None:
        """One exchange with a character (`timepoint chat`, the server's chat API): `as_of` is the
        timepoint it spoke as of (None: the end of the run); `context` a document the user added."""
        with self.db:
            self.db.execute("INSERT INTO chats (run_id, session, channel, entity_id, as_of, question, answer, context,"
                            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (self.run_id, session, channel, entity_id, as_of, question, answer, context, now_iso()))

    def save_shadow(self, rows: list[dict], fits: dict) -> None:
        """ADPRS in shadow: per entity and timepoint, φ's band beside the resolution it really had; and the
        envelope fitted to each entity's activation, kept so that no reader has to fit it again."""
        with self.db:
            self.db.execute("UPDATE runs SET shadow_fits = ? WHERE run_id = ?", (json.dumps(fits), self.run_id))
            self.db.executemany(
                "INSERT OR REPLACE INTO shadow_evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(self.run_id, r["entity_id"], r["timepoint_id"], r["phi"], r["predicted_band"],
                  r["actual_resolution"], r["divergence"], r["continuous_divergence"]) for r in rows])

    def add_validations(self, rows: list[dict]) -> None:
        """M4 findings: which validator, how severe, about whom and when, and what it found."""
        with self.db:
            self.db.executemany(
                "INSERT INTO validations (run_id, validator, severity, entity_id, timepoint_id, message)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(self.run_id, r["validator"], r["severity"], r.get("entity_id"), r.get("timepoint_id"),
                  r["message"]) for r in rows])

    def remove_exposure(self, entity_id: str, information: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM exposure_events WHERE run_id = ? AND entity_id = ? AND information = ?",
                            (self.run_id, entity_id, information))

    def snapshot_states(self, timepoint_id: str, seq: int, entities: list[Entity],
                        knowledge_counts: dict[str, int]) -> None:
        """Each entity's state at the end of a timepoint, its mind (arc, ledger, what is unspoken) with it:
        the before/after of training records, read "as of" a timepoint by the read side (history.py)."""
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO entity_states (run_id, entity_id, timepoint_id, seq, tensor, cognitive,"
                " physical, knowledge_count, resolution, mind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(self.run_id, e.id, timepoint_id, seq, e.tensor.model_dump_json(), e.cognitive.model_dump_json(),
                  e.physical.model_dump_json(), knowledge_counts.get(e.id, 0), e.resolution, e.mind.model_dump_json())
                 for e in entities])

    def record_call(self, call: CallRecord) -> None:
        """One ledger row per call, and the run's running totals."""
        with self.db:
            self.db.execute(
                "INSERT INTO llm_calls (run_id, role, provider, model, request_key, tokens_in, tokens_out,"
                " tokens_reused, cost_usd, latency_ms, cached, attempts, error, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.run_id, call.role, call.provider, call.model, call.request_key, call.tokens_in,
                 call.tokens_out, call.tokens_reused, call.cost_usd, round(call.latency_ms, 1), int(call.cached),
                 call.attempts, call.error, now_iso()))
            self.db.execute(
                "UPDATE runs SET llm_calls = llm_calls + 1, cached_calls = cached_calls + ?,"
                " tokens_in = tokens_in + ?, tokens_out = tokens_out + ?, tokens_reused = tokens_reused + ?,"
                " cost_usd = cost_usd + ? WHERE run_id = ?",
                (int(call.cached), call.tokens_in, call.tokens_out, call.tokens_reused, call.cost_usd,
                 self.run_id))

    def record_gap(self, unit: str, reason: str, timepoint_id: str | None = None, role: str | None = None,
                   request_key: str | None = None) -> None:
        """Work the run skipped because a call failed for good: what, where, which call, why."""
        with self.db:
            self.db.execute(
                "INSERT INTO gaps (run_id, timepoint_id, unit, role, request_key, reason, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self.run_id, timepoint_id, unit, role, request_key, reason, now_iso()))

    def record_mechanism(self, mechanism: str, hook: str, timepoint_id: str | None = None) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO mechanism_usage (run_id, mechanism, hook, timepoint_id, created_at)"
                " VALUES (?, ?, ?, ?, ?)", (self.run_id, mechanism, hook, timepoint_id, now_iso()))

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
