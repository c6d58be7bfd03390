"""run.json and the console summary: what a run made and what it cost."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ..history import RunHistory
from ..store import RunStore


def run_summary(source: RunStore | RunHistory, training_examples: int,
                export_errors: dict[str, str] | None = None) -> dict:
    h = RunHistory.of(source)
    run = h.run
    return {
        "id": run.id, "template": run.template, "mode": run.mode, "model": run.model,
        "status": run.status, "error": run.error,
        "counts": {**h.counts(), "training_examples": training_examples},
        "calls": {"total": run.llm_calls, "cached": run.cached_calls},
        "tokens": {"in": run.tokens_in, "out": run.tokens_out, "reused": run.tokens_reused},
        "cost_usd": round(run.cost_usd, 6), "duration_s": run.duration_s,
        "estimate": {"calls": run.est_calls, "tokens": run.est_tokens,
                     "cost_usd": round(run.est_cost_usd or 0.0, 6)},
        "mechanisms": h.mechanisms_fired(),
        "gaps": [{"unit": g.unit, "timepoint": g.timepoint_id, "role": g.role, "reason": g.reason} for g in h.gaps],
        "export_errors": export_errors or {},
        "created_at": run.created_at, "finished_at": run.finished_at,
    }


def write_run_json(summary: dict, run_dir: Path) -> Path:
    path = run_dir / "run.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return path


def console_lines(summary: dict, run_dir: Path) -> str:
    c, calls, tok, est = summary["counts"], summary["calls"], summary["tokens"], summary["estimate"]
    mech = summary["mechanisms"]
    lines = [
        f"Run {summary['id']}: {summary['status']}" + (f" ({summary['error']})" if summary["error"] else ""),
        f"  template {summary['template']}, mode {summary['mode']}, model {summary['model']}",
        f"  {c['entities']} entities, {c['timepoints']} timepoints"
        + (f" (best of {c['timelines']} timelines)" if c["timelines"] > 1 else "")
        + f", {c['dialogs']} dialogs, {c['turns']} turns, "
        f"{c['exposure_events']} exposure events, {c['training_examples']} training examples",
        f"  {calls['total']} model calls ({calls['cached']} cached), {tok['in']} tokens in"
        + (f" ({tok['reused']} reused from earlier prompts)" if tok["reused"] else "")
        + f", {tok['out']} out, ${summary['cost_usd']:.4f}, {summary['duration_s']:.1f}s",
        f"  estimated {est['calls']} calls, {est['tokens']} tokens, ${est['cost_usd']:.4f}",
        f"  mechanisms fired: {len(mech['fired'])} of {len(mech['enabled'])} enabled ({', '.join(mech['fired'])})",
    ]
    if summary["gaps"]:
        units = Counter(g["unit"].split(" (")[0] for g in summary["gaps"])
        lines.append(f"  {len(summary['gaps'])} gaps (work skipped after failed calls): "
                     + ", ".join(f"{n} {unit}" for unit, n in units.most_common()))
    for name, error in summary["export_errors"].items():
        lines.append(f"  exporter {name} failed: {error}")
    lines.append(f"  {run_dir}")
    return "\n".join(lines)
