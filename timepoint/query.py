"""`timepoint query RUN ENTITY "question"`: ask an entity of a finished run, in character, from what
it knew by the end of the run's main timeline.

Asking is M5: the question's intent sets the resolution it needs, and an entity below it — or one
due for retraining (M2) — is elevated first, gaining knowledge items recorded as `learned`
exposures. Calls go through the run's own models and are added to its ledger.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, Field

from . import chat
from .history import EntityRecord, KnownItem, RunHistory, TimepointRecord
from .llm.selection import model_chains
from .mechanisms.elevation import Intent, kept_items, needs_retraining, target_level
from .store import RunStore, open_run
from .world import ExposureEvent

KNOWLEDGE_SHOWN = 20


class Classified(BaseModel):
    intent: Literal[get_args(Intent)] = Field(description="What the question is about")


class NewKnowledge(BaseModel):
    items: list[Annotated[str, Field(max_length=200)]] = Field(max_length=12)


class Reply(BaseModel):
    answer: str = Field(max_length=800, description="The answer, in the character's own voice")


def _known(store: RunStore, entity_id: str) -> list[KnownItem]:
    """What the entity knew by the end of the main timeline, most confident first; read afresh, so
    knowledge an elevation has just added is in it."""
    return sorted(RunHistory(store).known_at_end(entity_id), key=lambda e: -e.confidence)


async def ask(run_dir: Path, entity_id: str, question: str, providers: dict | None = None) -> dict:
    store = open_run(run_dir)
    try:
        return await _ask(store, entity_id, question, providers)
    finally:
        store.close()


async def _ask(store: RunStore, entity_id: str, question: str, providers: dict | None) -> dict:
    from .engine import model_session

    history = RunHistory(store)
    entity = chat.entity(history, entity_id)
    cfg = chat.run_config(history)
    async with model_session(cfg, model_chains(cfg), store.record_call, providers) as gateway:
        persona = chat.persona(entity)
        intent = (await gateway.structured("judge", [
            {"role": "system", "content": "Classify what a question asks about: general, knowledge, relationships, "
                                          "actions, or dialog (how the person talks). Answer in JSON."},
            {"role": "user", "content": question}], Classified, temperature=0.0)).intent
        before = entity.resolution
        after, items = before, []
        if "M5" in cfg.mechanisms.enabled:
            last = history.timepoints[-1]
            centrality = last.metadata.get("centrality", {}).get(entity_id, 0.0)
            retrain = "M2" in cfg.mechanisms.enabled and needs_retraining(
                centrality, entity.training_count, entity.query_count, before)
            after = target_level(before, intent, retrain)
            if after != before:
                items = await _elevate(gateway, store, entity, persona, after, last)
                store.record_mechanism("M2" if retrain else "M5", "elevation", last.id)
        known = _known(store, entity_id)[:KNOWLEDGE_SHOWN]
        listing = "\n".join(f"- {e.information} (from {e.source})" for e in known)
        answer = (await gateway.structured("dialog", [
            {"role": "system", "content": f"{persona}\n\nYou know only this:\n{listing}\n\nAnswer as yourself, "
                                          "from what you know; say so when you do not know. Answer in JSON."},
            {"role": "user", "content": question}], Reply, temperature=0.7)).answer
        store.record_query(entity_id, question, intent, answer, before, after, trained=after != before)
        store.record_mechanism("M5", "query", None)
        return {"entity": entity_id, "intent": intent, "answer": answer, "resolution_before": before,
                "resolution_after": after, "new_knowledge": items}


async def _elevate(gateway, store: RunStore, entity: EntityRecord, persona: str, level: str,
                   last: TimepointRecord) -> list[str]:
    """New knowledge for the level the entity is raised to, consistent with what it already knows."""
    known = "\n".join(f"- {e.information}" for e in _known(store, entity.id)[:KNOWLEDGE_SHOWN])
    reply = await gateway.structured("extraction", [
        {"role": "system", "content": "You deepen a character in a simulation: list facts this person would "
                                      "plausibly know, consistent with what they already know. Answer in JSON."},
        {"role": "user", "content": f"{persona}\n\nAlready known:\n{known}\n\nList new, specific facts."}],
        NewKnowledge, temperature=0.7)
    items = kept_items(reply.items, level)
    store.add_exposures([ExposureEvent(entity_id=entity.id, event_type="learned", information=item,
                                       source="elevation", timestamp=last.time, confidence=0.8,
                                       timepoint_id=last.id) for item in items])
    return items
