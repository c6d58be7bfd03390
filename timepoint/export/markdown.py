"""Markdown report of a run: the story it told and what it took to tell it.

Premise, run facts, the cast's final states, the main timeline, competing timelines, sample dialogs,
where each entity's knowledge came from, the mechanisms that fired and the cost by role; everything
read from the run store, so any past run can be reported again.
"""

from __future__ import annotations

from pathlib import Path

from ..analysis import narrative
from ..history import DialogRecord, RunHistory, TimepointRecord
from ..store import RunStore

SAMPLE_DIALOGS = 3
EXAMPLES_PER_ENTITY = 3


def _text(value: object) -> str:
    """One line: stored text may hold newlines that would break a list item or a table row."""
    return " ".join(str(value).split()) if value is not None else "—"


def _cell(value: object) -> str:
    return _text(value).replace("|", "\\|")


def _table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows])


def _name(h: RunHistory, entity_id: str) -> str:
    return h.name(entity_id)


def _when(timestamp: str | None) -> str:
    return (timestamp or "—").replace("T", " ")


def _clip(text: str, limit: int = 200) -> str:
    text = _text(text)
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _header(h: RunHistory) -> str:
    run = h.run
    return f"# {_text(run.title or run.template)}\n\n{_text(run.premise)}"


def _facts(h: RunHistory) -> str:
    run = h.run
    safe = "training-safe" if run.training_safe else "not training-safe"
    status = (run.status or "—") + (f" ({_text(run.error)})" if run.error else "")
    duration = f"{run.duration_s:.1f} s" if run.duration_s is not None else "—"
    estimate = f" (estimated ${run.est_cost_usd:.4f})" if run.est_cost_usd is not None else ""
    facts = [
        ("Run", f"`{run.id}`"), ("Template", run.template), ("Mode", run.mode),
        ("Model", f"{run.model}, licence {run.model_license or 'unknown'}, {safe}"),
        ("Seed", run.seed), ("Location", _text(run.location)), ("Status", status),
        ("Started", _when(run.created_at)), ("Finished", _when(run.finished_at)), ("Duration", duration),
        ("Model calls", f"{run.llm_calls} ({run.cached_calls} cached)"),
        ("Tokens", f"{run.tokens_in:,} in, {run.tokens_out:,} out"),
        ("Cost", f"${run.cost_usd:.4f}{estimate}"),
    ]
    return "## Run\n\n" + "\n".join(f"- **{label}:** {value}" for label, value in facts)


def _cast(h: RunHistory) -> str:
    """Final states: each entity as it ended the run."""
    rows = [[e["name"], e["title"], e["role"], ", ".join(e["traits"]), f"{e['valence']:+.2f}", f"{e['arousal']:.2f}",
             f"{e['energy']:.0f}", e["knows"]] for e in narrative.cast(h)]
    header = ["Name", "Title", "Role", "Traits", "Valence", "Arousal", "Energy", "Knows"]
    return "## Cast\n\nFinal state of each entity; *Knows* counts its knowledge items.\n\n" + _table(header, rows)


def _timeline(h: RunHistory) -> str:
    parts = ["## Timeline"]
    for n, tp in enumerate(h.timepoints, start=1):
        present = ", ".join(_name(h, e) for e in tp.present) or "nobody"
        cause = _text(tp.causal_link)
        if tp.causal_parent:
            cause += f" (follows `{tp.causal_parent}`)"
        parts.append(f"### {n}. {_when(tp.timestamp)} · `{tp.id}`\n\n{_text(tp.event)}\n\n"
                     f"- **Present:** {present}\n- **Causal link:** {cause}\n"
                     f"- **Importance:** {tp.importance:.2f}")
    return "\n\n".join(parts)


def _timelines(h: RunHistory) -> str | None:
    """Only worth a table when the run weighed more than one timeline (branching, portal paths)."""
    timelines = narrative.timelines(h)
    if len(timelines) < 2:
        return None
    rows = [[f"`{t['id']}`", t["mode"], t["rank"], f"{t['coherence']:.2f}" if t["coherence"] is not None else "—",
             t["timepoints"], ", ".join(t["flags"]) or "—", t["parent"], t["branch_point"]] for t in timelines]
    header = ["Timeline", "Mode", "Rank", "Coherence", "Timepoints", "Flags", "Parent", "Branch point"]
    note = "Rank 0 is the best; `main` is the one the timeline above follows."
    return f"## Timelines\n\n{note}\n\n" + _table(header, rows)


def _dialog(h: RunHistory, tp: TimepointRecord, dialog: DialogRecord) -> str:
    meta = [f"mood {dialog.mood}" if dialog.mood else None,
            f"ended by {dialog.ending.replace('_', ' ')}" if dialog.ending else None,
            f"quality {dialog.quality_score:.2f}" if dialog.quality_score is not None else None]
    lines = [f"### {_when(tp.timestamp)} · `{tp.id}`",
             f"*{_text(dialog.summary)}*" if dialog.summary else None,
             ", ".join(m for m in meta if m).capitalize() or None]
    for turn in dialog.turns:
        tone = f" *({turn.emotional_tone})*" if turn.emotional_tone else ""
        lines.append(f"**{_name(h, turn.speaker)}**{tone}: {_text(turn.content)}")
    return "\n\n".join(line for line in lines if line)


def _dialogs(h: RunHistory) -> str | None:
    """The best-rated dialogs in full (ties go to the earlier), shown in story order."""
    scenes = [(tp, h.dialogs[tp.id]) for tp in h.timepoints if tp.id in h.dialogs]
    if not scenes:
        return None
    best = sorted(range(len(scenes)), key=lambda i: -(scenes[i][1].quality_score or 0))[:SAMPLE_DIALOGS]
    title = f"## Sample dialogs ({len(best)} of {len(scenes)})"
    return "\n\n".join([title, *(_dialog(h, *scenes[i]) for i in sorted(best))])


def _counts(h: RunHistory, counts: dict[str, int], names: bool = False) -> str:
    return ", ".join(f"{h.name(key) if names else key} {n}" for key, n in counts.items())


def _provenance(h: RunHistory) -> str | None:
    """Per entity, how it came to know what it knows (M3): by kind of exposure and by source."""
    if not h.exposures:
        return None
    rows, examples = [], []
    for p in narrative.provenance(h):
        rows.append([p["name"], p["items"], _counts(h, p["by_event_type"]), _counts(h, p["by_source"], names=True)])
        examples += [f"- **{p['name']}**, {e['event_type']} via {_name(h, e['source'])} "
                     f"(confidence {e['confidence']:.2f}, `{e['timepoint_id']}`): {_clip(e['information'])}"
                     for e in p["first_of_each_kind"][:EXAMPLES_PER_ENTITY]]
    table = _table(["Entity", "Items", "By event type", "By source"], rows)
    return ("## Knowledge provenance\n\n" + table
            + "\n\nFirst item of each kind per entity:\n\n" + "\n".join(examples))


def _mechanisms(h: RunHistory) -> str | None:
    usage = narrative.mechanisms(h)
    if not usage:
        return None
    rows = [[m["id"], m["name"] or "—", m["uses"], ", ".join(m["hooks"])] for m in usage]
    return "## Mechanisms fired\n\n" + _table(["Mechanism", "Name", "Uses", "Hooks"], rows)


def _costs(h: RunHistory) -> str | None:
    """Which kinds of call (dialog, steering, judge...) the money and tokens went to."""
    roles = narrative.costs(h)
    if not roles:
        return None
    rows = [[r["role"], r["calls"], r["cached"], f"{r['tokens_in']:,}", f"{r['tokens_out']:,}",
             f"${r['cost_usd']:.4f}"] for r in roles]
    return "## Cost by role\n\n" + _table(["Role", "Calls", "Cached", "Tokens in", "Tokens out", "Cost"], rows)


def report(source: RunStore | RunHistory) -> str:
    h = RunHistory.of(source)
    sections = [_header(h), _facts(h), _cast(h), _timeline(h), _timelines(h), _dialogs(h), _provenance(h),
                _mechanisms(h), _costs(h)]
    return "\n\n".join(s for s in sections if s) + "\n"


def export(store: RunStore, out_dir: Path, compression: str = "none") -> list[Path]:
    """Always plain text: a report is read whole, not streamed line by line."""
    path = out_dir / "report.md"
    path.write_text(report(store), encoding="utf-8", newline="\n")
    return [path]
