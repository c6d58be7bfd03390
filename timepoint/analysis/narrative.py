"""A run's report as structured JSON: the story it told and what it took to tell it.

The same content as the Markdown report (which renders its tables from the sections here) and the run
page, as data a program can read: run facts, the cast's final states, the main timeline, competing
timelines, every dialog turn by turn, where each entity's knowledge came from and who told whom what,
the mechanisms that fired, cost by role, gaps and the ADPRS shadow report. Read through the read side.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from ..history import KnownItem, RunHistory, TurnRecord
from ..mechanisms import MECHANISMS, shadow
from ..store import RunStore


def run_facts(h: RunHistory) -> dict:
    run = h.run
    return {
        "id": run.id, "template": run.template, "title": run.title, "premise": run.premise,
        "location": run.location, "mode": run.mode, "model": run.model, "model_license": run.model_license,
        "training_safe": run.training_safe, "status": run.status, "error": run.error, "seed": run.seed,
        "created_at": run.created_at, "finished_at": run.finished_at, "duration_s": run.duration_s,
        "calls": {"total": run.llm_calls, "cached": run.cached_calls},
        "tokens": {"in": run.tokens_in, "out": run.tokens_out},
        "cost_usd": run.cost_usd,
        "estimate": {"calls": run.est_calls, "tokens": run.est_tokens, "cost_usd": run.est_cost_usd},
    }


def cast(h: RunHistory) -> list[dict]:
    """Each entity as it ended the run; `knows` counts its knowledge items."""
    known = Counter(e.entity_id for e in h.exposures)
    return [{"id": entity_id, "name": ent.name, "type": ent.type, "title": ent.title, "role": ent.role,
             "traits": ent.traits, "goals": ent.goals, "resolution": ent.resolution,
             "valence": ent.cognitive.valence, "arousal": ent.cognitive.arousal, "energy": ent.cognitive.energy,
             "knows": known[entity_id]} for entity_id, ent in h.entities.items()]


def main_timeline(h: RunHistory) -> list[dict]:
    return [{"id": tp.id, "index": tp.index, "timestamp": tp.timestamp, "event": tp.event, "present": tp.present,
             "causal_parent": tp.causal_parent, "causal_link": tp.causal_link, "importance": tp.importance,
             "dialog_turns": len(h.dialogs[tp.id].turns) if tp.id in h.dialogs else 0} for tp in h.timepoints]


def timelines(h: RunHistory) -> list[dict]:
    """Best first; `timepoints` counts each one's own timepoints (a branch shares those before its fork)."""
    sizes = Counter(tp.timeline_id for tp in h.all_timepoints.values())
    return [{"id": t.id, "mode": t.mode, "rank": t.rank, "coherence": t.coherence, "timepoints": sizes[t.id],
             "flags": t.flags, "parent": t.parent_id, "branch_point": t.branch_point, "metadata": t.metadata}
            for t in h.timelines.values()]


def dialogs(h: RunHistory) -> list[dict]:
    """Every dialog in story order, turn by turn, with its quality scores."""
    order = {tp.id: n for n, tp in enumerate(h.all_timepoints.values())}
    out = []
    for d in sorted(h.dialogs.values(), key=lambda d: order.get(d.timepoint_id, len(order))):
        tp = h.timepoint(d.timepoint_id)
        out.append({
            "id": d.id, "timepoint_id": d.timepoint_id, "timestamp": tp.timestamp if tp else None,
            "participants": d.participants, "summary": d.summary, "mood": d.mood, "ending": d.ending,
            "turn_count": d.turn_count,
            "quality": {"score": d.quality_score, "passed": d.quality_passed, "checks": d.quality_checks,
                        "semantic": d.semantic, "voice_distinctiveness": d.voice_distinctiveness},
            "turns": [turn(h, t) for t in d.turns]})
    return out


def turn(h: RunHistory, t: TurnRecord) -> dict:
    return {"index": t.index, "speaker": t.speaker, "speaker_name": h.name(t.speaker), "content": t.content,
            "move": t.move, "move_target": t.move_target, "tone": t.emotional_tone}


def _item(e: KnownItem) -> dict:
    return {"event_type": e.event_type, "source": e.source, "information": e.information, "timestamp": e.timestamp,
            "confidence": e.confidence, "timepoint_id": e.timepoint_id}


def provenance(h: RunHistory) -> list[dict]:
    """Per entity, how it came to know what it knows (M3): counts by kind of exposure and by source
    (most first), and the first item of each kind."""
    by_entity: dict[str, list[KnownItem]] = defaultdict(list)
    for ev in h.exposures:
        by_entity[ev.entity_id].append(ev)
    out = []
    for entity_id in [*h.entities, *(e for e in by_entity if e not in h.entities)]:
        events = by_entity.get(entity_id, [])
        firsts: dict[str, KnownItem] = {}
        for e in events:
            firsts.setdefault(e.event_type, e)
        out.append({"entity_id": entity_id, "name": h.name(entity_id), "items": len(events),
                    "by_event_type": dict(Counter(e.event_type for e in events).most_common()),
                    "by_source": dict(Counter(e.source for e in events).most_common()),
                    "first_of_each_kind": [_item(e) for e in firsts.values()]})
    return out


def knowledge_flow(h: RunHistory) -> list[dict]:
    """Who told whom what, and when: every exposure whose source is another entity of the run."""
    return [{"from": e.source, "to": e.entity_id, **_item(e)} for e in h.exposures
            if e.source in h.entities and e.source != e.entity_id]


def mechanisms(h: RunHistory) -> list[dict]:
    """The mechanisms that left usage rows, by number, with how often and at which hooks."""
    uses, hooks = Counter(u.mechanism for u in h.mechanism_usage), defaultdict(dict)
    for u in h.mechanism_usage:
        hooks[u.mechanism][u.hook] = None
    order = sorted(uses, key=lambda m: (int(m[1:]) if m[1:].isdigit() else 10 ** 6, m))
    return [{"id": m, "name": MECHANISMS.get(m), "uses": uses[m], "hooks": [k for k in hooks[m] if k]}
            for m in order]


def costs(h: RunHistory) -> list[dict]:
    """Which kinds of call (dialog, steering, judge...) the money and tokens went to, costliest first."""
    roles: dict[str, list] = defaultdict(list)
    for c in h.calls:
        roles[c.role or "unknown"].append(c)
    rows = [{"role": role, "calls": len(calls), "cached": sum(c.cached for c in calls),
             "tokens_in": sum(c.tokens_in for c in calls), "tokens_out": sum(c.tokens_out for c in calls),
             "cost_usd": sum(c.cost_usd for c in calls), "errors": sum(bool(c.error) for c in calls)}
            for role, calls in roles.items()]
    return sorted(rows, key=lambda r: (-r["cost_usd"], -r["calls"], r["role"]))


def gaps(h: RunHistory) -> list[dict]:
    return [{"unit": g.unit, "timepoint_id": g.timepoint_id, "role": g.role, "reason": g.reason} for g in h.gaps]


def shadow_report(h: RunHistory) -> dict:
    """ADPRS in shadow (the run's shadow_report.json), from the store: φ's band against each entity's
    actual resolution, and the envelope fitted to each one's activation (fitted again only for a store
    from before the fits were kept)."""
    timepoints = sorted(h.table("timepoints"), key=lambda r: r["idx"])
    return shadow.report(timepoints, h.table("entity_states"), h.run.shadow_fits)


def narrative(source: RunStore | RunHistory) -> dict:
    h = RunHistory.of(source)
    return {
        "run": run_facts(h), "cast": cast(h), "timeline": main_timeline(h), "timelines": timelines(h),
        "dialogs": dialogs(h), "knowledge": provenance(h), "knowledge_flow": knowledge_flow(h),
        "mechanisms": {**h.mechanisms_fired(), "usage": mechanisms(h)}, "costs": costs(h), "gaps": gaps(h),
        "shadow": shadow_report(h),
    }
