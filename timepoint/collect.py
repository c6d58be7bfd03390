"""Collect many runs (a sweep, a folder of runs) into one deduplicated dataset.

Records are rebuilt from each run's store, as the exporters do, so any past run can be collected;
each record's metadata gains the run's provenance (run, template, mode, model, seed, variation and
a hash of its settings) so a dataset row can be traced to, and grouped by, what produced it.
Near-duplicates are removed per kind by TF-IDF cosine similarity, first seen kept, and the report
says which record went, which kept record it resembled, and how closely.

    out/<kind>.jsonl, out/<kind>.parquet   the kept records (training, chat)
    out/dataset.sqlite                     every collected run's rows of every table, one schema
    out/collect_report.json                runs collected and skipped, removals, diversity
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import TfidfVectorizer

from .errors import UserError
from .export.chat import chat_records
from .export.lines import write_jsonl
from .export.parquet import BOOL, INT, STR, STRS
from .export.training import distinctive, training_records
from .history import RunHistory, RunInfo
from .migrations import migrate
from .store import MIGRATIONS, TABLES, RunStore, insert_rows

VARIATION = pa.struct([("strategy", STR), ("index", INT)])
PROVENANCE = [("run_id", STR), ("template", STR), ("mode", STR), ("model", STR), ("seed", INT),
              ("variation", VARIATION), ("config_hash", STR)]
MESSAGES = pa.list_(pa.struct([("role", STR), ("content", STR)]))


@dataclass(frozen=True)
class Kind:
    """One kind of record: how a run yields them, the text compared for duplicates, how the report
    names one, which metadata field is its entity, and its Parquet schema."""
    records: Callable[[RunHistory], list[dict]]
    text: Callable[[dict], str]
    name: Callable[[dict], str]
    entity: str
    schema: pa.Schema


KINDS = {
    "training": Kind(
        training_records, distinctive,
        lambda m: f"{m['entity_id']}@{m['timepoint_id']}", "entity_id",
        pa.schema([("prompt", STR), ("completion", STR), ("entity_id", STR), ("timepoint_id", STR),
                   ("mechanisms", STRS), ("training_safe", BOOL), *PROVENANCE])),
    "chat": Kind(
        chat_records, lambda r: "\n".join(m["content"] for m in r["messages"][-2:]),
        lambda m: f"{m['dialog_id']}#{m['turn_index']}", "speaker",
        pa.schema([("messages", MESSAGES), ("dialog_id", STR), ("timepoint_id", STR), ("speaker", STR),
                   ("turn_index", INT), ("training_safe", BOOL), *PROVENANCE])),
}

# Similarities held in memory at once while deduplicating: 4M float64, 32 MB.
PAIR_BUDGET = 1 << 22
EPSILON = 1e-9  # float error: identical texts must count as similarity 1.0 at threshold 1.0
WORD = re.compile(r"\w+")


# -- finding and opening runs -----------------------------------------------------------------

def _sweep_order(path: Path) -> tuple:
    """Numeric parts as numbers, so multirun job 10 comes after job 9."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts)


def run_dirs(sources: list[Path]) -> list[Path]:
    """Every directory under the sources holding a run.db (a source may be one), each once, in sweep order."""
    found: dict[Path, None] = {}
    for source in map(Path, sources):
        if not source.is_dir():
            raise UserError(f"collect: no such directory {str(source)!r}")
        for db in sorted(source.rglob("run.db"), key=_sweep_order):
            found.setdefault(db.parent.resolve())
    return list(found)


def _open(run_dir: Path) -> RunHistory | dict:
    """The run when it completed; otherwise the report's entry saying why it is skipped."""
    try:
        history = RunHistory(RunStore(run_dir / "run.db", create=False))
    except (FileNotFoundError, sqlite3.DatabaseError) as exc:
        return {"run_dir": str(run_dir), "run_id": None, "status": None, "reason": f"unreadable run store: {exc}"}
    run = history.run
    if run.status == "completed":
        return history
    history.store.close()
    reason = f"status {run.status!r}, not completed" + (f": {run.error}" if run.error else "")
    return {"run_dir": str(run_dir), "run_id": run.id, "status": run.status, "reason": reason}


# -- provenance -------------------------------------------------------------------------------

def config_hash(config: dict) -> str:
    """Equal settings hash equal wherever they ran: Hydra's own block and the paths (a machine's home) are
    left out; the rest as canonical JSON, sha256, first 16 hex digits."""
    settings = {k: v for k, v in config.items() if k not in ("hydra", "paths")}
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _variation(config: dict) -> dict | None:
    """Which variation of its template the run is: strategy and index (the rest, e.g. magnitude, is in the hash)."""
    variations = config.get("variations")
    return {"strategy": variations["strategy"], "index": variations["index"]} if variations else None


def provenance(run: RunInfo) -> dict:
    """What produced a run's records, from its row in the store (no config: no variation, no hash)."""
    return {"run_id": run.id, "template": run.template, "mode": run.mode, "model": run.model, "seed": run.seed,
            "variation": _variation(run.config), "config_hash": config_hash(run.config) if run.config else None}


def _stamped(records: list[dict], origin: dict) -> list[dict]:
    return [{**r, "metadata": {**r["metadata"], **origin}} for r in records]


# -- deduplication and diversity --------------------------------------------------------------

def vectorize(texts: list[str]) -> csr_matrix:
    """TF-IDF rows, L2-normalised, so a dot product of two rows is their cosine similarity."""
    return TfidfVectorizer().fit_transform(texts)


def _nearest_kept(sims: np.ndarray, kept: np.ndarray) -> tuple[int, float]:
    """The most similar kept row among the earlier ones, and how similar (-1 when none is kept)."""
    if not kept.any():
        return -1, 0.0
    masked = np.where(kept, sims, -1.0)
    twin = int(masked.argmax())
    return twin, float(masked[twin])


def near_duplicates(texts: list[str], threshold: float = 0.9) -> tuple[list[int], list[tuple[int, int, float]]]:
    """Greedy, in order: a text is dropped when a kept earlier text is at least `threshold` cosine-similar,
    else kept, so of a group of near-twins the first seen stays. Returns the kept indices and, per dropped
    text, (its index, its most similar kept text's index, their similarity).

    Rows are compared a block at a time against all earlier rows (a sparse product, made dense one block
    at a time so at most PAIR_BUDGET similarities are held) and masked to the kept ones: O(n²) pairs in
    time, O(nnz + PAIR_BUDGET) in memory, never an n×n matrix."""
    if not texts:
        return [], []
    matrix, n = vectorize(texts), len(texts)
    kept, dropped = np.zeros(n, dtype=bool), []
    step = max(1, PAIR_BUDGET // n)
    for start in range(0, n, step):
        stop = min(n, start + step)
        block = (matrix[start:stop] @ matrix[:stop].T).toarray()
        for i in range(start, stop):
            twin, sim = _nearest_kept(block[i - start, :i], kept[:i])
            if twin >= 0 and sim >= threshold - EPSILON:
                dropped.append((i, twin, round(min(sim, 1.0), 4)))
            else:
                kept[i] = True
    return np.flatnonzero(kept).tolist(), dropped


def mean_similarity(texts: list[str], sample: int = 500, seed: int = 0) -> float | None:
    """Mean cosine similarity over distinct pairs of at most `sample` texts, seeded so a report is
    reproducible: lower is more varied. None for fewer than two texts."""
    if len(texts) < 2:
        return None
    picked = random.Random(seed).sample(texts, min(sample, len(texts)))
    matrix = vectorize(picked)
    sims = (matrix @ matrix.T).toarray()
    return round(float(sims[np.triu_indices(len(picked), 1)].mean()), 4)


def diversity(texts: list[str], entities: list[str]) -> dict:
    """How varied the kept records are: whom they are about, how many distinct words, how alike."""
    return {"distinct_entities": len(set(entities)),
            "vocabulary": len({w for t in texts for w in WORD.findall(t.lower())}),
            "mean_pairwise_similarity": mean_similarity(texts)}


# -- one kind ---------------------------------------------------------------------------------

def _removal(kind: Kind, found: list[tuple[Path, dict]], texts: list[str], i: int, twin: int, sim: float,
             threshold: float) -> dict:
    """A removed record, its kept near-twin (each as run dir, run id and the record's name) and why."""
    def ref(k: int) -> dict:
        run_dir, meta = found[k][0], found[k][1]["metadata"]
        return {"run_dir": str(run_dir), "run_id": meta["run_id"], "record": kind.name(meta)}
    why = "exact duplicate" if texts[i] == texts[twin] else f"near-duplicate: cosine {sim:.4f} >= {threshold}"
    return {"record": ref(i), "twin": ref(twin), "similarity": sim, "reason": why}


def _write(name: str, kind: Kind, records: list[dict], out: Path) -> None:
    """JSONL as the exporters write it, and Parquet with the kind's schema (metadata fields as columns)."""
    write_jsonl(out / f"{name}.jsonl", records)
    rows = [{**r["metadata"], **{k: v for k, v in r.items() if k != "metadata"}} for r in records]
    pq.write_table(pa.Table.from_pylist(rows, schema=kind.schema), out / f"{name}.parquet", compression="zstd")


def collect_kind(name: str, found: list[tuple[Path, dict]], out: Path, threshold: float) -> dict:
    """Deduplicate one kind's records (in collection order), write the kept ones, and report."""
    kind = KINDS[name]
    texts = [kind.text(record) for _, record in found]
    kept, dropped = near_duplicates(texts, threshold)
    _write(name, kind, [found[i][1] for i in kept], out)
    return {"records_in": len(found), "records_out": len(kept),
            "removed": [_removal(kind, found, texts, *d, threshold) for d in dropped],
            "diversity": diversity([texts[i] for i in kept], [found[i][1]["metadata"][kind.entity] for i in kept])}


# -- the merged store -------------------------------------------------------------------------

def _append_rows(history: RunHistory, db: sqlite3.Connection, table: str) -> None:
    """One table's rows of a run, less the AUTOINCREMENT id: every store numbers from 1, so ids would
    collide across runs (nothing refers to them)."""
    insert_rows(db, table, [{k: v for k, v in row.items() if k != "id"} for row in history.table(table)])


def merge_stores(stores: list[RunHistory], path: Path) -> None:
    """Every run's rows of every table in one SQLite file, built by the run store's migrations so its
    schema is the store's; one plain file (no WAL beside it) to share."""
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    try:
        migrate(db, MIGRATIONS)
        with db:
            for store in stores:
                for table in TABLES:
                    _append_rows(store, db, table)
    finally:
        db.close()


# -- collect ----------------------------------------------------------------------------------

def _collected(run_dir: Path, history: RunHistory, counts: dict[str, int], first: Path) -> dict:
    entry = {"run_dir": str(run_dir), **provenance(history.run), "records": counts}
    if first != run_dir:
        entry["same_run_as"] = str(first)  # one run copied twice: its rows are merged once
    return entry


def _gather(stores: dict[Path, RunHistory]) -> tuple[dict[str, list[tuple[Path, dict]]], dict[Path, dict[str, int]]]:
    """Every kind's records of every run, stamped with their provenance, in collection order (which
    decides the first seen of near-twins), and how many each run gave."""
    found: dict[str, list[tuple[Path, dict]]] = {name: [] for name in KINDS}
    counts: dict[Path, dict[str, int]] = {}
    for run_dir, store in stores.items():
        origin = provenance(store.run)
        for name, kind in KINDS.items():
            records = _stamped(kind.records(store), origin)
            found[name] += [(run_dir, r) for r in records]
            counts.setdefault(run_dir, {})[name] = len(records)
    return found, counts


def collect(sources: list[Path], out: Path, threshold: float = 0.9) -> dict:
    """Collect every completed run under `sources` into `out`; returns the report (also written to
    out/collect_report.json)."""
    out.mkdir(parents=True, exist_ok=True)
    opened = {run_dir: _open(run_dir) for run_dir in run_dirs(sources)}
    stores = {d: s for d, s in opened.items() if isinstance(s, RunHistory)}
    try:
        found, counts = _gather(stores)
        first: dict[str, Path] = {}
        for run_dir, store in stores.items():
            first.setdefault(store.run.id, run_dir)
        merge_stores([stores[d] for d in first.values()], out / "dataset.sqlite")
        report = {
            "out": str(out), "threshold": threshold,
            "runs": {"collected": [_collected(d, s, counts[d], first[s.run.id]) for d, s in stores.items()],
                     "skipped": [s for s in opened.values() if isinstance(s, dict)]},
            "kinds": {name: collect_kind(name, found[name], out, threshold) for name in KINDS},
        }
    finally:
        for store in stores.values():
            store.store.close()
    (out / "collect_report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report


def render(report: dict) -> str:
    """The report in a few lines for the console; collect_report.json has every removal."""
    runs = report["runs"]
    lines = [f"collected {len(runs['collected'])} runs into {report['out']} ({len(runs['skipped'])} skipped)"]
    lines += [f"  skipped {s['run_dir']}: {s['reason']}" for s in runs["skipped"]]
    lines += [f"  {c['run_dir']} is the same run as {c['same_run_as']}: its rows are merged once"
              for c in runs["collected"] if "same_run_as" in c]
    for name, k in report["kinds"].items():
        d = k["diversity"]
        lines.append(f"{name}: {k['records_in']} records -> {k['records_out']} "
                     f"({len(k['removed'])} near-duplicates at >= {report['threshold']} removed); "
                     f"{d['distinct_entities']} entities, vocabulary {d['vocabulary']}, "
                     f"mean similarity {d['mean_pairwise_similarity']}")
    return "\n".join(lines)
