"""The one door to the models: selection, cache, budget, retries, fallback, concurrency,
structured output and the call ledger.

Callers name the kind of call (its role) and ask for a pydantic model; they get a validated
instance back. Nothing else in Timepoint talks to a provider.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from ..config import ModelCard
from .budget import Budget
from .cache import ResponseCache
from .providers import Provider, make_provider
from .request import CallRecord, Completion, Request
from .retry import ProviderError, RetryPolicy, with_retries
from .schema_cache import json_schema as cached_json_schema

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)


class StructuredOutputError(RuntimeError):
    """The model's answer did not fit the schema, even after one repair round."""


class ReplayMiss(RuntimeError):
    """cache.mode=replay and the request is not in the cache."""


class _Unfit(ValueError):
    """An answer that is not JSON, or JSON that does not fit the schema."""


def _parse(schema: type[T], text: str) -> T:
    """Validate an answer; raw control characters inside strings are tolerated (grammars allow them)."""
    try:
        return schema.model_validate(json.loads(text, strict=False))
    except json.JSONDecodeError as exc:
        raise _Unfit(f"not valid JSON ({exc.msg} at char {exc.pos})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _Unfit(f"{'.'.join(map(str, first['loc'])) or 'answer'}: {first['msg']}") from None


def worst_case_chars(schema: dict, root: dict | None = None) -> int:
    """The longest JSON text an instance of `schema` can be: a grammar cannot emit more."""
    root = root or schema
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in schema:
        return max(worst_case_chars(s, root) for s in schema["anyOf"])
    if "enum" in schema:
        return max(len(json.dumps(v)) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        return 2 + sum(len(k) + 6 + worst_case_chars(v, root) for k, v in schema.get("properties", {}).items())
    if kind == "array":
        return 2 + schema.get("maxItems", 8) * (2 + worst_case_chars(schema.get("items", {}), root))
    if kind == "string":
        return 2 + schema.get("maxLength", 400)
    return 24


def token_budget(schema: dict, grammar: bool = False) -> int:
    """Enough output tokens for the schema's longest answer. Under a grammar a looping model can
    spend a token per character (digit runs do), so that is the budget there; it stops when the
    grammar completes, so an unused budget costs nothing. Elsewhere two characters a token."""
    chars = worst_case_chars(schema)
    return chars + 32 if grammar else chars // 2 + 32


def price(card: ModelCard, tokens_in: int, tokens_out: int) -> float:
    return (tokens_in * card.price_in + tokens_out * card.price_out) / 1_000_000


@dataclass
class _Model:
    card: ModelCard
    provider: Provider
    slots: asyncio.Semaphore


class ModelGateway:
    def __init__(self, chains: dict[str, list[ModelCard]], cache: ResponseCache, cache_mode: str, budget: Budget,
                 seed: int, on_call: Callable[[CallRecord], None], policy: RetryPolicy = RetryPolicy(),
                 max_concurrency: int = 16, providers: dict[str, Provider] | None = None):
        """`chains` maps a role to the cards that answer it: the first, then its fallbacks in order."""
        cards = {card.name: card for chain in chains.values() for card in chain}
        providers = providers or {}
        self._models = {name: _Model(card, providers.get(name) or make_provider(card),
                                     asyncio.Semaphore(card.max_concurrency)) for name, card in cards.items()}
        self._chains = {role: [self._models[c.name] for c in chain] for role, chain in chains.items()}
        self._all_calls = asyncio.Semaphore(max_concurrency)
        self.cache, self.cache_mode, self.budget = cache, cache_mode, budget
        self.seed, self.on_call, self.policy = seed, on_call, policy
        self._jitter = random.Random(seed)

    async def structured(self, role: str, messages: list[dict], schema: type[T], *,
                         temperature: float | None = None, top_p: float = 0.95, max_tokens: int | None = None,
                         frequency_penalty: float = 0.0, presence_penalty: float = 0.0) -> T:
        """Ask the role's model for an instance of `schema`, falling back along its chain if it keeps failing.

        `max_tokens` defaults to what the schema's longest instance needs, so answers are not cut off.
        """
        chain = self._chains[role]
        params = dict(temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                      frequency_penalty=frequency_penalty, presence_penalty=presence_penalty)
        for position, model in enumerate(chain):
            try:
                return await self._structured_on(model, role, messages, schema, **params)
            except (ProviderError, ReplayMiss) as exc:
                if position == len(chain) - 1:
                    raise
                log.warning("%s call: %s failed (%s); falling back to %s", role, model.card.name, exc,
                            chain[position + 1].card.name)
        raise AssertionError("unreachable: a role's chain is never empty")

    async def _structured_on(self, model: _Model, role: str, messages: list[dict], schema: type[T], *,
                             temperature: float | None, top_p: float, max_tokens: int | None,
                             frequency_penalty: float, presence_penalty: float) -> T:
        card = model.card
        json_schema = cached_json_schema(schema)
        request = Request(
            provider=card.provider, model=card.model_id, messages=messages, json_schema=json_schema,
            temperature=card.temperature if temperature is None else temperature, top_p=top_p,
            max_tokens=min(max_tokens or token_budget(json_schema, card.structured_output == "grammar"),
                           card.max_output),
            frequency_penalty=frequency_penalty, presence_penalty=presence_penalty, seed=self.seed,
        )
        text = await self._call(model, role, request)
        try:
            return _parse(schema, text)
        except _Unfit as first_error:
            repair = messages + [
                {"role": "assistant", "content": text},
                {"role": "user", "content": f"That answer does not fit the required JSON schema: {first_error}. "
                                            "Reply again with JSON only."},
            ]
            text = await self._call(model, role, replace(request, messages=repair))
            try:
                return _parse(schema, text)
            except _Unfit as exc:
                raise StructuredOutputError(
                    f"{role} call to {card.name} gave an answer that does not fit {schema.__name__} "
                    f"after one repair: {exc}; answer: {text[:300]!r}") from None

    async def _call(self, model: _Model, role: str, request: Request) -> str:
        key = request.key()
        record = CallRecord(role=role, provider=request.provider, model=request.model, request_key=key,
                            request=request)
        if self.cache_mode != "off" and (hit := self.cache.get(key)) is not None:
            record.tokens_in, record.tokens_out, record.cached, record.answer = \
                hit.tokens_in, hit.tokens_out, True, hit.text
            self.on_call(record)
            return hit.text
        if self.cache_mode == "replay":
            raise ReplayMiss(f"cache.mode=replay: no cached answer for the {role} call to {request.model} "
                             f"(key {key[:12]}, {len(request.messages)} messages, last: "
                             f"{request.messages[-1]['content'][:120]!r})")
        worst_in = request.prompt_chars() // 2 + 1  # tokenizers rarely spend more than a token per 2 chars
        self.budget.admit(price(model.card, worst_in, request.max_tokens), worst_in + request.max_tokens)
        started = time.perf_counter()
        try:
            async with self._all_calls, model.slots:
                completion, record.attempts = await with_retries(
                    lambda: model.provider.complete(request), self.policy, f"{role} call to {model.card.name}",
                    self._jitter)
        except ProviderError as exc:
            record.error, record.attempts = str(exc), getattr(exc, "attempts", 1)
            record.latency_ms = (time.perf_counter() - started) * 1000
            self.on_call(record)
            raise
        self._account(model.card, record, completion, started)
        if self.cache_mode == "read_write":
            self.cache.put(key, request.provider, request.model, completion)
        return completion.text

    def _account(self, card: ModelCard, record: CallRecord, completion: Completion, started: float) -> None:
        record.latency_ms = (time.perf_counter() - started) * 1000
        record.tokens_in, record.tokens_out = completion.tokens_in, completion.tokens_out
        at_card = price(card, completion.tokens_in, completion.tokens_out)
        record.cost_usd = completion.cost_usd if completion.cost_usd is not None else at_card
        record.answer = completion.text
        self.budget.spend(record.cost_usd, completion.tokens_in + completion.tokens_out, at_card)
        self.on_call(record)

    async def close(self) -> None:
        for model in self._models.values():
            await model.provider.close()
