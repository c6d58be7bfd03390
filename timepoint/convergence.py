"""Convergence: do several runs of one scenario tell the same story?

Each run is reduced to two edge sets whose keys mean the same thing in every run:

- causal edges: (parent event, child event) along the main timeline, as normalised text. Indexes alone
  would make any two forward runs of equal length identical; the text says whether the story agrees.
- knowledge edges: (entity id, normalised information) of the run's `told`, `learned` and `experienced`
  exposure events. `initial` knowledge comes from the template, so it would only inflate agreement.

Normalised text is lowercased, whitespace collapsed, first 80 characters: wording that only differs
in case, spacing or a long tail counts as the same. Runs are compared pairwise by Jaccard (two empty
sets agree fully); the score weighs the mean causal and mean knowledge Jaccard equally and is graded
with the cutoffs of the reference's convergence evaluation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from statistics import mean

from .errors import UserError
from .history import opened
from .world import jaccard

WEIGHTS = {"causal": 0.5, "knowledge": 0.5}
GRADES = ((0.9, "A"), (0.8, "B"), (0.7, "C"), (0.5, "D"))
KNOWLEDGE_TYPES = ("told", "learned", "experienced")
TEXT_CHARS = 80


def normalise(text: str) -> str:
    return " ".join(text.lower().split())[:TEXT_CHARS]


def grade(score: float) -> str:
    return next((letter for cutoff, letter in GRADES if score >= cutoff), "F")


@dataclass
class RunEdges:
    """What one run contributes to a comparison."""

    run_id: str
    run_dir: Path
    template: str
    events: list[str]  # normalised, main timeline in index order
    causal: set[tuple[str, str]]
    knowledge: set[tuple[str, str]]
    final_words: set[str]


def load_run(run_dir: Path) -> RunEdges:
    """Read once, keep only the comparable keys: the store is closed before any comparison starts."""
    with opened(run_dir) as h:
        main = h.timepoints
        causal = {(normalise(parent.event), normalise(tp.event)) for tp in main if (parent := h.parent(tp))}
        knowledge = {(e.entity_id, normalise(e.information)) for e in h.exposures if e.event_type in KNOWLEDGE_TYPES}
        final = set(re.findall(r"\w+", main[-1].event.lower())) if main else set()
        return RunEdges(h.run.id, Path(run_dir), h.run.template, [normalise(tp.event) for tp in main],
                        causal, knowledge, final)


def first_divergence(event_lists: list[list[str]]) -> int | None:
    """The first main-timeline index where the runs' events are not all the same (a missing one differs)."""
    for i in range(max(map(len, event_lists))):
        if len({events[i] if i < len(events) else None for events in event_lists}) > 1:
            return i
    return None


def compare_pair(a: RunEdges, b: RunEdges) -> dict:
    causal, knowledge = jaccard(a.causal, b.causal), jaccard(a.knowledge, b.knowledge)
    return {"a": a.run_id, "b": b.run_id, "causal": causal, "knowledge": knowledge,
            "score": WEIGHTS["causal"] * causal + WEIGHTS["knowledge"] * knowledge,
            "outcome_similarity": jaccard(a.final_words, b.final_words),
            "divergence_index": first_divergence([a.events, b.events])}


def _stats(values: list[float]) -> dict:
    return {"mean": mean(values), "min": min(values), "max": max(values)}


def _agreement(runs: list[RunEdges], kind: str, fields: tuple[str, str]) -> tuple[list[dict], list[dict]]:
    """Edges every run has (consensus), and those only some have, fewest runs first (contested)."""
    holders: dict[tuple, list[str]] = {}
    for run in runs:
        for edge in getattr(run, kind):
            holders.setdefault(edge, []).append(run.run_id)
    consensus = [dict(zip(fields, edge)) for edge, ids in sorted(holders.items()) if len(ids) == len(runs)]
    contested = [{**dict(zip(fields, edge)), "runs": ids, "agreement": len(ids) / len(runs)}
                 for edge, ids in sorted(holders.items(), key=lambda kv: (len(kv[1]), kv[0]))
                 if len(ids) < len(runs)]
    return consensus, contested


def _divergence(runs: list[RunEdges]) -> dict | None:
    index = first_divergence([run.events for run in runs])
    if index is None:
        return None
    return {"index": index,
            "events": {run.run_id: run.events[index] if index < len(run.events) else None for run in runs}}


def convergence(run_dirs: list[Path]) -> dict:
    """Compare two or more runs (ideally of one template) on causal and knowledge edges."""
    if len(run_dirs) < 2:
        raise UserError("convergence: give at least two runs")
    runs = [load_run(Path(d)) for d in run_dirs]
    pairs = [compare_pair(a, b) for a, b in combinations(runs, 2)]
    causal_consensus, causal_contested = _agreement(runs, "causal", ("source", "target"))
    knowledge_consensus, knowledge_contested = _agreement(runs, "knowledge", ("entity_id", "information"))
    score = mean(p["score"] for p in pairs)
    return {
        "runs": [{"run_id": r.run_id, "run_dir": str(r.run_dir), "template": r.template, "timepoints": len(r.events),
                  "causal_edges": len(r.causal), "knowledge_edges": len(r.knowledge)} for r in runs],
        "templates": sorted({r.template for r in runs}),
        "weights": dict(WEIGHTS),
        "score": score,
        "grade": grade(score),
        **{key: _stats([p[key] for p in pairs]) for key in ("causal", "knowledge", "outcome_similarity")},
        "pairs": pairs,
        "consensus": {"causal": causal_consensus, "knowledge": knowledge_consensus},
        "contested": {"causal": causal_contested, "knowledge": knowledge_contested},
        "divergence": _divergence(runs),
    }


def _stat_line(name: str, stats: dict) -> str:
    return f"  {name:<19} {stats['mean']:.3f}  (min {stats['min']:.3f}, max {stats['max']:.3f})"


def _pair_line(p: dict) -> str:
    diverges = "-" if p["divergence_index"] is None else str(p["divergence_index"])
    return (f"  {p['a']} vs {p['b']}  causal {p['causal']:.3f}  knowledge {p['knowledge']:.3f}  "
            f"score {p['score']:.3f}  outcome {p['outcome_similarity']:.3f}  diverges at {diverges}")


def _contested_lines(result: dict, limit: int = 10) -> list[str]:
    rows = [(e["agreement"], f"causal     {e['source']!r} -> {e['target']!r}", e["runs"])
            for e in result["contested"]["causal"]]
    rows += [(e["agreement"], f"knowledge  {e['entity_id']}: {e['information']!r}", e["runs"])
             for e in result["contested"]["knowledge"]]
    rows.sort(key=lambda row: row[0])
    lines = [f"  {len(runs)}/{len(result['runs'])}  {text}" for _, text, runs in rows[:limit]]
    return lines + ([f"  ... and {len(rows) - limit} more"] if len(rows) > limit else [])


def render(result: dict) -> str:
    """The result as a readable report: score and grade, the pairs, where the runs part ways."""
    runs = result["runs"]
    lines = [f"Convergence of {len(runs)} runs of {', '.join(result['templates'])}: "
             f"score {result['score']:.3f}, grade {result['grade']}"]
    if len(result["templates"]) > 1:
        lines.append("  note: the runs are of different templates; expect little in common")
    lines += [_stat_line(name, result[name]) for name in ("causal", "knowledge", "outcome_similarity")]
    lines += ["", "Runs:"] + [f"  {r['run_id']}  {r['template']:<22} {r['timepoints']:>3} timepoints "
                              f"{r['causal_edges']:>4} causal {r['knowledge_edges']:>5} knowledge edges" for r in runs]
    lines += ["", "Pairs:"] + [_pair_line(p) for p in result["pairs"]]
    consensus, contested = result["consensus"], result["contested"]
    lines += ["", f"Consensus edges: {len(consensus['causal'])} causal, {len(consensus['knowledge'])} knowledge; "
                  f"contested: {len(contested['causal'])} causal, {len(contested['knowledge'])} knowledge"]
    lines += _contested_lines(result)
    div = result["divergence"]
    lines += ["", "Divergence: none, every run has the same main-timeline events" if div is None
              else f"Divergence: first at timepoint {div['index']}"]
    if div:
        lines += [f"  {run_id}: {'(no timepoint)' if text is None else repr(text)}"
                  for run_id, text in div["events"].items()]
    return "\n".join(lines)
