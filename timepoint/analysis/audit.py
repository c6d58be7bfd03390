"""`timepoint audit RUN|SWEEP_DIR`: does every record tell the truth about its moment?

Each run's dataset files are checked against its store, read independently of the exporters (raw
snapshot rows, not the read side's answers), so an exporter that drifts is caught:

- every record validates against its shipped JSON Schema;
- no prompt shows a knowledge item its entity had not been exposed to by T0 — along the causal
  ancestry, which in PORTAL and BRANCHING runs is not the order the timepoints were generated in;
- no value a prompt shows comes from after T0: trust and alignment, energy, valence, arousal and the
  knowledge count equal the snapshot at the end of T0 (a chat turn's, the snapshot going into its
  timepoint), to the precision printed;
- no state field stands still where the run gave it cause to move (an entity that spoke whose energy
  never changes, one told things whose knowledge count never grows, a pair whose judged exchanges
  never move its trust, someone in two or more dialogs whose mood never moves);
- near-duplicate records (TF-IDF cosine ≥ 0.9) are under 10% of each file;
- no chat answer is degenerate (the dialog gate's own judgement, applied to the record);

and reports records by task, per call and per dollar. Any violation makes the exit code 1.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from jsonschema import Draft202012Validator

from .. import schemas
from ..collect import KINDS, near_duplicates, run_dirs
from ..dialog.quality import degenerate
from ..export.lines import read_jsonl
from ..history import AFTER_DIALOG, OPENING, RunHistory, opened

TASKS = ("training", "chat", "backward", "counterfactual")
DUPLICATE_SHARE = 0.10
SIMILAR = 0.9
PRINTED = {"energy": 0.05, "valence": 0.005, "arousal": 0.005, "trust": 0.005, "alignment": 0.005}
SHOWN_ITEM = 80        # characters of a knowledge item that identify it in a prompt (items are cut when shown)
SHORTEST_ITEM = 24     # shorter items are too generic to say a prompt shows them


@dataclass(frozen=True)
class Violation:
    check: str
    run: str
    record: str
    detail: str


@dataclass
class RunAudit:
    run_dir: str
    run_id: str
    records: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    cost_usd: float = 0.0
    violations: list[Violation] = field(default_factory=list)

    def flag(self, check: str, record: str, detail: str) -> None:
        self.violations.append(Violation(check, self.run_id, record, detail))


# -- the store, read raw --------------------------------------------------------------------------

class Truth:
    """What the store says held at each moment, from its raw rows."""

    def __init__(self, history: RunHistory):
        self.history = history
        tps = history.table("timepoints")
        self.parent = {t["timepoint_id"]: t["causal_parent"] for t in tps}
        self.states = {(s["entity_id"], s["timepoint_id"]): s for s in history.table("entity_states")}
        self.trust = {(r["entity_a"], r["entity_b"], r["timepoint_id"]): r
                      for r in history.table("relationship_states")}
        self.exposures = history.table("exposure_events")
        self.entities = {e["entity_id"]: e for e in history.table("entities")}
        self.names = {e["name"]: eid for eid, e in self.entities.items()}

    def ancestry(self, tp: str) -> set[str]:
        seen, current = set(), self.parent.get(tp)
        while current and current not in seen:
            seen.add(current)
            current = self.parent.get(current)
        return seen

    def before(self, tp: str) -> str:
        """The snapshot an entity carries into `tp`: its parent's end, or the opening one."""
        return self.parent.get(tp) or f"{OPENING}{tp}"

    def known(self, entity: str, tp: str, during: bool = False) -> set[str]:
        """What `entity` had been exposed to going into `tp` (and, `during`, at `tp` before its dialog)."""
        ancestry = self.ancestry(tp)
        return {e["information"] for e in self.exposures if e["entity_id"] == entity and (
            e["timepoint_id"] in ancestry or str(e["timepoint_id"]).startswith(OPENING)
            or (during and e["timepoint_id"] == tp and e["event_type"] not in AFTER_DIALOG))}

    def preoccupations(self, entity: str, snapshot: str) -> set[str]:
        """What was on the entity's own mind then (M15): it may show its own preoccupations, exposed or not."""
        row = self.states.get((entity, snapshot))
        mind = json.loads(row["mind"]) if row and row.get("mind") else {}
        return {f"Preoccupied with: {t['topic']}" for t in mind.get("rumination", [])}

    def cognitive(self, entity: str, snapshot: str) -> dict | None:
        row = self.states.get((entity, snapshot))
        return json.loads(row["cognitive"]) if row else None

    def pair(self, a: str, b: str, snapshot: str) -> dict | None:
        return self.trust.get((*sorted((a, b)), snapshot))


# -- the checks -----------------------------------------------------------------------------------

def _section(text: str, title: str) -> str:
    """The body of a `=== TITLE ... ===` section of a prompt ('' when absent)."""
    match = re.search(rf"=== {re.escape(title)}[^\n]*===\n(.*?)(?=\n=== |\Z)", text, re.S)
    return match.group(1) if match else ""


def _leaks(text: str, allowed: set[str], everything: set[str]) -> list[str]:
    shown_allowed = [a[:SHOWN_ITEM] for a in allowed]
    return [item for item in everything - allowed
            if len(item) >= SHORTEST_ITEM and item[:SHOWN_ITEM] in text
            and not any(item[:SHOWN_ITEM] in a for a in shown_allowed)]


def _off(check: str, shown: float, true: float | None, what: str) -> str | None:
    if true is None:
        return f"{what}: shows {shown} but the store has no value at that moment"
    return f"{what}: shows {shown}, the store holds {true:.4f} then" \
        if abs(shown - true) > PRINTED[check] + 1e-9 else None


def _training(audit: RunAudit, truth: Truth, everything: set[str], r: dict) -> None:
    meta, prompt = r["metadata"], r["prompt"]
    entity, t1, t0 = meta["entity_id"], meta["timepoint_id"], meta["from_timepoint_id"]
    name = f"training {entity}@{t1}"
    for item in _leaks(prompt, truth.known(entity, t1) | truth.preoccupations(entity, t0), everything):
        audit.flag("unexposed_knowledge", name, f"shows {item[:70]!r}, which {entity} had not been exposed to")
    before = _section(prompt, "ENTITY BEFORE EVENT")
    cog = truth.cognitive(entity, t0) or {}
    for key in ("energy", "valence", "arousal"):
        found = re.search(rf"^{key.capitalize()}: (-?[\d.]+)", before, re.M)
        if found and (problem := _off(key, float(found.group(1)), cog.get(key), key)):
            audit.flag("future_value", name, problem)
    count = re.search(r"Knowledge \((\d+) items\)", before)
    state = truth.states.get((entity, t0))
    if count and state and int(count.group(1)) != state["knowledge_count"]:
        audit.flag("future_value", name, f"knowledge count: shows {count.group(1)}, "
                                         f"the store holds {state['knowledge_count']} at {t0}")
    for other, trust, align in re.findall(r"^\s+(\w+): .*?\(trust: ([\d.]+), alignment: ([\d.]+)",
                                          _section(prompt, "RELATIONSHIP CONTEXT"), re.M):
        pair = truth.pair(entity, other, t0)
        for key, shown in (("trust", trust), ("alignment", align)):
            if problem := _off(key, float(shown), pair[key] if pair else None, f"{key} with {other}"):
                audit.flag("future_value", name, problem)


def _chat(audit: RunAudit, truth: Truth, everything: set[str], turns: dict, r: dict) -> None:
    meta, messages = r["metadata"], r["messages"]
    speaker, tp = meta["speaker"], meta["timepoint_id"]
    name = f"chat {meta['dialog_id']}#{meta['turn_index']}"
    system = messages[0]["content"]
    snapshot = truth.before(tp)
    for item in _leaks(system, truth.known(speaker, tp, during=True) | truth.preoccupations(speaker, snapshot),
                       everything):
        audit.flag("unexposed_knowledge", name, f"shows {item[:70]!r}, which {speaker} had not been exposed to")
    cog = truth.cognitive(speaker, snapshot) or {}
    for key, shown in (meta.get("speaker_state") or {}).items():
        if key in PRINTED and (problem := _off(key, shown, cog.get(key), key)):
            audit.flag("future_value", name, problem)
    for other_name, trust, align in re.findall(r"^- (.+?): .*?\(trust ([\d.]+), alignment ([\d.]+)", system, re.M):
        other = truth.names.get(other_name)
        pair = truth.pair(speaker, other, snapshot) if other else None
        for key, shown in (("trust", trust), ("alignment", align)):
            if problem := _off(key, float(shown), pair[key] if pair else None, f"{key} with {other_name}"):
                audit.flag("future_value", name, problem)
    dialog = turns.get(meta["dialog_id"], [])
    earlier = [t["content"] for t in dialog if t["idx"] < meta["turn_index"]]
    people = [p for e in truth.entities.values() for p in (e["name"], e["title"])]
    if reason := degenerate(messages[-1]["content"], messages[:-1], earlier, people):
        audit.flag("degenerate", name, f"{reason}: {messages[-1]['content'][:80]!r}")


def _standing_still(audit: RunAudit, truth: Truth) -> None:
    """Fields that never move though the run gave them cause."""
    main = [t["timepoint_id"] for t in sorted(truth.history.table("timepoints"), key=lambda t: t["idx"])
            if t["timeline_id"] == "main"]
    if not main:
        return
    main = [f"{OPENING}{main[0]}", *main]  # from before anything happened
    turns = truth.history.table("turns")
    spoke = Counter(t["speaker"] for t in turns)
    dialogs = Counter(p for d in truth.history.table("dialogs") for p in json.loads(d["participants"]))
    told = {e["entity_id"] for e in truth.exposures if e["event_type"] == "told"}
    for entity in truth.entities:
        rows = [truth.states[(entity, tp)] for tp in main if (entity, tp) in truth.states]
        if len(rows) < 2:
            continue
        cogs = [json.loads(r["cognitive"]) for r in rows]
        if spoke[entity] and len({c["energy"] for c in cogs}) == 1:
            audit.flag("constant_field", entity, f"energy stays {cogs[0]['energy']} though {entity} spoke "
                                                 f"{spoke[entity]} turns")
        if dialogs[entity] >= 2 and len({(c["valence"], c["arousal"]) for c in cogs}) == 1:
            audit.flag("constant_field", entity, f"valence and arousal never move over {dialogs[entity]} dialogs")
        if entity in told and len({r["knowledge_count"] for r in rows}) == 1:
            audit.flag("constant_field", entity, "knowledge count never grows though others told it things")
        last = json.loads(rows[-1].get("mind") or "{}")
        landed = {a["target"] for a in last.get("attempts", []) if a["outcome"] in ("accepted", "dismissed")}
        for other in landed:
            values = {round(p["trust"], 4) for tp in main if (p := truth.pair(entity, other, tp))}
            if len(values) == 1:
                audit.flag("constant_field", f"{entity}~{other}",
                           "trust never moves though a tactic between them was accepted or dismissed")


def _duplicates(audit: RunAudit, task: str, records: list[dict]) -> None:
    if task not in KINDS or len(records) < 5:
        return
    _, dropped = near_duplicates([KINDS[task].text(r) for r in records], SIMILAR)
    if len(dropped) / len(records) >= DUPLICATE_SHARE:
        audit.flag("near_duplicates", task, f"{len(dropped)} of {len(records)} records are near-duplicates "
                                            f"(TF-IDF cosine ≥ {SIMILAR}); at most {DUPLICATE_SHARE:.0%} allowed")


def _dataset(run_dir: Path, task: str) -> Path | None:
    return next((p for p in (run_dir / f"{task}.jsonl", run_dir / f"{task}.jsonl.gz", run_dir / f"{task}.jsonl.bz2")
                 if p.exists()), None)


def audit_run(run_dir: Path) -> RunAudit:
    with opened(run_dir) as history:
        run = history.run
        audit = RunAudit(str(run_dir), run.id, calls=len(history.table("llm_calls")),
                         cost_usd=sum(c["cost_usd"] or 0.0 for c in history.table("llm_calls")))
        truth = Truth(history)
        everything = {e["information"] for e in truth.exposures}
        turns: dict[str, list[dict]] = {}
        for t in history.table("turns"):
            turns.setdefault(t["dialog_id"], []).append(t)
        for task in TASKS:
            path = _dataset(run_dir, task)
            if path is None:
                continue
            records = read_jsonl(path)
            audit.records[task] = len(records)
            validator, valid = Draft202012Validator(schemas.load(task)), []
            for i, r in enumerate(records):
                error = next(iter(validator.iter_errors(r)), None)
                if error is not None:
                    where = "/".join(map(str, error.absolute_path)) or "record"
                    audit.flag("schema", f"{task} #{i}", f"{where}: {error.message[:160]}")
                    continue
                valid.append(r)
                if task == "training":
                    _training(audit, truth, everything, r)
                elif task == "chat":
                    _chat(audit, truth, everything, turns, r)
            _duplicates(audit, task, valid)
        _standing_still(audit, truth)
    return audit


def audit(sources: list[Path]) -> list[RunAudit]:
    """Every run under the sources (a run directory, or a sweep or any folder holding runs)."""
    return [audit_run(d) for d in run_dirs(sources)]


def figures(audits: list[RunAudit]) -> dict:
    records = Counter()
    for a in audits:
        records.update(a.records)
    total, calls, cost = sum(records.values()), sum(a.calls for a in audits), sum(a.cost_usd for a in audits)
    return {"runs": len(audits), "records": dict(records),
            "records_per_call": round(total / calls, 3) if calls else None,
            "records_per_dollar": round(total / cost, 1) if cost else None,
            "violations": dict(Counter(v.check for a in audits for v in a.violations))}


def render(audits: list[RunAudit], shown: int = 20) -> str:
    f = figures(audits)
    lines = [f"audited {f['runs']} run(s): " + ", ".join(f"{n} {task}" for task, n in f["records"].items()),
             f"  records per call {f['records_per_call']}, per dollar "
             + (f"{f['records_per_dollar']}" if f["records_per_dollar"] else "n/a (no spend)")]
    violations = [v for a in audits for v in a.violations]
    if not violations:
        lines.append("  no violations")
    else:
        lines.append(f"  {len(violations)} violations: " + ", ".join(f"{n} {c}" for c, n in f["violations"].items()))
        lines += [f"  {v.check} [{v.run} {v.record}] {v.detail}" for v in violations[:shown]]
        if len(violations) > shown:
            lines.append(f"  ... and {len(violations) - shown} more (--out FILE writes them all)")
    return "\n".join(lines)


def report(audits: list[RunAudit]) -> dict:
    return {"figures": figures(audits),
            "runs": [{"run_dir": a.run_dir, "run_id": a.run_id, "records": a.records,
                      "violations": [v.__dict__ for v in a.violations]} for a in audits]}
