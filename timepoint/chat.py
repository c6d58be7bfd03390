"""Talking with a character of a finished run, as it was at the end of the run or of one timepoint.

The character speaks from its persona, its state then and what it knew then, never from later,
through the run's own model card and the model layer (budget, cache, call ledger). `timepoint chat`
and the server's OpenAI-compatible endpoint both talk through here, and every exchange is kept in
the run's store (`chats`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .config import RunConfig
from .dialog.context import Part, fit
from .errors import UserError
from .estimate import CHARS_PER_TOKEN
from .history import EntityRecord, EntityState, KnownItem, RunHistory, TimepointRecord
from .llm.selection import model_chains
from .store import RunStore, open_run

KNOWLEDGE_SHOWN = 20
CONTEXT_CHARS = 6000  # a document added to the conversation is cut here, and says so
HISTORY_MESSAGES = 12  # the conversation's latest turns that go with each request
# RUN_ID/ENTITY_ID, optionally @TIMEPOINT_ID: how a character is named as a chat model
MODEL_RE = re.compile(r"^(?P<run>[A-Za-z0-9_.-]+)/(?P<entity>[A-Za-z0-9_.-]+)(?:@(?P<at>[A-Za-z0-9_.-]+))?$")


def run_config(h: RunHistory) -> RunConfig:
    """The configuration the run was made with: its model cards, cache and limits answer for it again."""
    return RunConfig.model_validate({k: v for k, v in h.run.config.items() if k != "hydra"})


def entity(h: RunHistory, entity_id: str) -> EntityRecord:
    if entity_id not in h.entities:
        raise UserError(f"entity: no entity {entity_id!r} in this run; entities are {', '.join(sorted(h.entities))}")
    return h.entities[entity_id]


def persona(e: EntityRecord) -> str:
    lines = [f"You are {e.name}, {e.title}. {e.description}", f"Traits: {', '.join(e.traits)}"]
    if e.voice_guide:
        lines.append("How you talk: " + "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in e.voice_guide.items()))
    return "\n".join(lines)


@dataclass(frozen=True)
class Character:
    """An entity as of a moment: the end of the run (`at` None) or the end of timepoint `at`."""

    run_id: str
    entity: EntityRecord
    at: TimepointRecord | None
    moment: TimepointRecord  # the timepoint whose end it speaks from
    state: EntityState | None
    known: list[KnownItem]  # most confident first

    @property
    def model(self) -> str:
        return f"{self.run_id}/{self.entity.id}" + (f"@{self.at.id}" if self.at else "")


def character(h: RunHistory, entity_id: str, at: str | None = None) -> Character:
    """The entity at the end of the run's main timeline, or at the end of timepoint `at` (any timeline)."""
    who = entity(h, entity_id)
    if at is None:
        moment = h.timepoints[-1]
        known = h.known_at_end(entity_id)
    else:
        moment = h.timepoint(at)
        if moment is None:
            main = [tp.id for tp in h.timepoints]
            ids = main + sorted(set(h.all_timepoints) - set(main))
            raise UserError(f"at: no timepoint {at!r} in this run; timepoints are {', '.join(ids[:12])}"
                            + (f" and {len(ids) - 12} more" if len(ids) > 12 else ""))
        known = h.known_through(entity_id, moment)
    ranked = sorted(known, key=lambda e: (-e.confidence, -e.id))
    return Character(h.run.id, who, moment if at else None, moment, h.state_at(entity_id, moment), ranked)


def parse_model(model: str) -> tuple[str, str, str | None]:
    """`RUN_ID/ENTITY_ID[@TP]` as (run id, entity id, timepoint id or None); a UserError otherwise."""
    match = MODEL_RE.match(model or "")
    if not match:
        raise UserError(f"model: {model!r} names no character; use RUN_ID/ENTITY_ID or RUN_ID/ENTITY_ID@TIMEPOINT_ID "
                        "(GET /v1/models lists them)")
    return match["run"], match["entity"], match["at"]


def _state(c: Character) -> str:
    if c.state is None:
        return ""
    cog, body = c.state.cognitive, c.state.physical
    feeling = "upbeat" if cog.valence > 0.3 else "low" if cog.valence < -0.3 else "even"
    hurt = f", in pain ({body.pain:.1f})" if body.pain > 0 else ""
    return (f"How you are now: mood {feeling} (valence {cog.valence:+.2f}), arousal {cog.arousal:.2f}, "
            f"energy {cog.energy:.0f}/100{hurt}.")


def system_prompt(c: Character, budget_tokens: int | None, notes: list[str] = (), context: str | None = None) -> str:
    """Persona, moment, state, what it knows, any notes from the user's side and an added document; under
    a model's prompt budget the knowledge goes first, then the document, never the persona."""
    knowledge = "\n".join(f"- {e.information} (from {e.source}, {e.when})" for e in c.known[:KNOWLEDGE_SHOWN])
    when = (f"It is {c.moment.timestamp.replace('T', ' ')[:16]}, just after: {c.moment.event}"
            if c.at else f"The story is over; the last thing that happened: {c.moment.event}")
    document = ""
    if context:
        clipped = context[:CONTEXT_CHARS] + (" [… cut]" if len(context) > CONTEXT_CHARS else "")
        document = "A document you have been shown:\n" + clipped
    parts = [Part(persona(c.entity)), Part(when, cut=1), Part(_state(c), cut=2),
             Part("You know only this:\n" + (knowledge or "- nothing beyond who you are"), cut=3),
             Part(document, cut=2), *(Part(n, cut=1) for n in notes),
             Part("Stay in character. Answer as yourself, from what you know; say so when you do not know. "
                  "Talk, do not narrate.")]
    return fit(parts, None if budget_tokens is None else budget_tokens * CHARS_PER_TOKEN)


def messages(c: Character, conversation: list[dict], budget_tokens: int | None,
             context: str | None = None) -> list[dict]:
    """The request: the character's system prompt, then the conversation's user and assistant turns. A
    client's own system messages become notes in the character's prompt, so they cannot unmake it."""
    notes = [m["content"] for m in conversation if m["role"] == "system"]
    turns = [{"role": m["role"], "content": m["content"]} for m in conversation if m["role"] in ("user", "assistant")]
    if not turns or turns[-1]["role"] != "user":
        raise UserError("messages: the conversation must end with a user message")
    turns = turns[-HISTORY_MESSAGES:]
    return [{"role": "system", "content": system_prompt(c, budget_tokens, notes, context)}, *turns]


async def reply(gateway, store: RunStore, c: Character, conversation: list[dict], *, session: str, channel: str,
                context: str | None = None, temperature: float | None = None,
                max_tokens: int | None = None) -> AsyncIterator[str]:
    """The character's answer as it is written; once it is whole, the exchange goes into the run's store."""
    card = gateway.card("dialog")
    request = messages(c, conversation, card.prompt_budget, context)
    pieces = []
    async for piece in gateway.stream("dialog", request, temperature=temperature, max_tokens=max_tokens):
        pieces.append(piece)
        yield piece
    store.record_chat(session, channel, c.entity.id, c.at.id if c.at else None, request[-1]["content"],
                      "".join(pieces), context)


async def talk(run_dir: Path, entity_id: str, at: str | None, questions: Iterable[str], out: TextIO,
               context: str | None = None, providers: dict | None = None) -> int:
    """`timepoint chat`: each question in turn (typed, or given with --batch), each answer printed as it
    is written and kept in the run's store with the rest of the conversation. Returns the exchanges made."""
    from .engine import model_session

    store = open_run(run_dir)
    try:
        history = RunHistory(store)
        who = character(history, entity_id, at)
        cfg = run_config(history)
        session, conversation = f"cli-{secrets.token_hex(4)}", []
        async with model_session(cfg, model_chains(cfg), store.record_call, providers) as gateway:
            for question in questions:
                conversation.append({"role": "user", "content": question})
                print(f"{who.entity.name}: ", end="", file=out, flush=True)
                pieces = []
                async for piece in reply(gateway, store, who, conversation, session=session, channel="cli",
                                         context=context):
                    pieces.append(piece)
                    print(piece, end="", file=out, flush=True)
                print(file=out)
                conversation.append({"role": "assistant", "content": "".join(pieces)})
        return len(conversation) // 2
    finally:
        store.close()
