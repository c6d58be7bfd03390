"""The one door to the models: selection, cache, budget, retries, fallback, concurrency,
structured output and the call ledger.

Callers name the kind of call (its role) and ask for a pydantic model; they get a validated
instance back. Nothing else in Timepoint talks to a provider.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from ..config import ModelCard
from .budget import Budget
from .cache import ResponseCache
from .errors import AccountError, CallFailed, ProviderDown, ProviderError, ReplayMiss, StructuredOutputError
from .limiter import AdaptiveLimit, Slot
from .providers import Provider, make_provider
from .request import CallRecord, Completion, Request
from .retry import RetryPolicy, with_retries
from .schema_cache import json_schema as cached_json_schema

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)


class _Unfit(ValueError):
    """An answer that is not JSON, or JSON that does not fit the schema; `cut_off` when it ran out of tokens."""

    def __init__(self, message: str, text: str, cut_off: bool = False):
        super().__init__(message)
        self.text, self.cut_off = text, cut_off


def _ends_early(text: str) -> bool:
    """JSON that stops inside a string or with brackets still open: the answer was cut off."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
    return in_string or depth > 0


def _parse(schema: type[T], completion: Completion) -> T:
    """Validate an answer; raw control characters inside strings are tolerated (grammars allow them)."""
    text = completion.text
    try:
        return schema.model_validate(json.loads(text, strict=False))
    except json.JSONDecodeError as exc:
        cut_off = completion.finish_reason == "length" or _ends_early(text)
        what = "cut off" if cut_off else "not valid JSON"
        raise _Unfit(f"{what} ({exc.msg} at char {exc.pos})", text, cut_off) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise _Unfit(f"{'.'.join(map(str, first['loc'])) or 'answer'}: {first['msg']}", text) from None


def derived_seed(seed: int, request_key: str, attempt: int) -> int:
    """The seed of a resample: new for each attempt, yet the same on every rerun, so the cache replays it."""
    return int(hashlib.sha256(f"{seed}:{request_key}:{attempt}".encode()).hexdigest()[:8], 16)


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
    limit: AdaptiveLimit


RESAMPLE_TEMPERATURE = 0.6  # a resample at temperature 0 would only repeat itself
FREE_TEXT_TOKENS = 400  # a spoken answer, when the caller names no limit


def _request(card: ModelCard, **fields) -> Request:
    """A request to the card's model, addressed (and so cached) by all that picks the answerer: provider,
    model id, endpoint and structured-output mode."""
    return Request(provider=card.provider, model=card.model_id, endpoint=card.base_url or card.path,
                   structured_output=card.structured_output, **fields)


def _record(role: str, request: Request) -> CallRecord:
    """The ledger line a call starts with; what it cost and how it went are filled in as it goes."""
    return CallRecord(role=role, provider=request.provider, model=request.model, request_key=request.key(),
                      request=request)


class ModelGateway:
    def __init__(self, chains: dict[str, list[ModelCard]], cache: ResponseCache, cache_mode: str, budget: Budget,
                 seed: int, on_call: Callable[[CallRecord], None], policy: RetryPolicy = RetryPolicy(),
                 max_concurrency: int = 16, providers: dict[str, Provider] | None = None,
                 structured_attempts: int = 3, max_consecutive_failures: int = 10):
        """`chains` maps a role to the cards that answer it: the first, then its fallbacks in order."""
        cards = {card.name: card for chain in chains.values() for card in chain}
        providers = providers or {}
        self._models = {name: _Model(card, providers.get(name) or make_provider(card),
                                     AdaptiveLimit(name, card.max_concurrency)) for name, card in cards.items()}
        self._chains = {role: [self._models[c.name] for c in chain] for role, chain in chains.items()}
        self._all_calls = asyncio.Semaphore(max_concurrency)
        self.cache, self.cache_mode, self.budget = cache, cache_mode, budget
        self.seed, self.on_call, self.policy = seed, on_call, policy
        self.structured_attempts, self.max_consecutive_failures = structured_attempts, max_consecutive_failures
        self._failures_in_a_row = 0
        self._jitter = random.Random(seed)

    def card(self, role: str) -> ModelCard:
        """The model card that answers a role first."""
        return self._chains[role][0].card

    async def structured(self, role: str, messages: list[dict], schema: type[T], *,
                         temperature: float | None = None, top_p: float = 0.95, max_tokens: int | None = None,
                         frequency_penalty: float = 0.0, presence_penalty: float = 0.0) -> T:
        """Ask the role's model for an instance of `schema`, falling back along its chain if it keeps failing.

        `max_tokens` defaults to what the schema's longest instance needs, so answers are not cut off.
        Raises `CallFailed` when no model of the chain gave a usable answer (the caller skips that
        unit of work); `ProviderDown` when too many calls in a row have failed.
        """
        chain = self._chains[role]
        params = dict(temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                      frequency_penalty=frequency_penalty, presence_penalty=presence_penalty)
        for position, model in enumerate(chain):
            try:
                answer = await self._structured_on(model, role, messages, schema, **params)
            except CallFailed as exc:
                if position < len(chain) - 1:
                    log.warning("%s call: %s failed (%s); falling back to %s", role, model.card.name, exc,
                                chain[position + 1].card.name)
                    continue
                self._failures_in_a_row += 1
                if self._failures_in_a_row >= self.max_consecutive_failures:
                    raise ProviderDown(f"{self._failures_in_a_row} model calls in a row failed, the last: {exc}. "
                                       "Rerun the same command to resume: finished calls come from the cache") \
                        from exc
                raise
            self._failures_in_a_row = 0
            return answer
        raise AssertionError("unreachable: a role's chain is never empty")

    async def _structured_on(self, model: _Model, role: str, messages: list[dict], schema: type[T], *,
                             temperature: float | None, top_p: float, max_tokens: int | None,
                             frequency_penalty: float, presence_penalty: float) -> T:
        """Up to `structured_attempts` requests: a cut-off answer is asked again with more room, an unfit
        one is resampled with a derived seed, and the last attempt (of three or more) is a repair."""
        card = model.card
        json_schema = cached_json_schema(schema)
        grammar = card.structured_output == "grammar"
        room = min(token_budget(json_schema, grammar), card.max_output)
        # Under a grammar the schema's caps bound the answer, so it always gets the room to close them.
        first = _request(
            card, messages=messages, json_schema=json_schema,
            temperature=card.temperature if temperature is None else temperature, top_p=top_p,
            max_tokens=min(max(max_tokens or 0, room) if grammar else max_tokens or room, card.max_output),
            frequency_penalty=frequency_penalty, presence_penalty=presence_penalty, seed=self.seed,
        )
        request, attempts = first, self.structured_attempts
        for attempt in range(1, attempts + 1):
            try:
                return await self._attempt(model, role, request, schema)
            except _Unfit as exc:
                unfit = exc
            if attempt == attempts:
                break
            if unfit.cut_off and request.max_tokens < card.max_output:
                request = replace(request, max_tokens=min(card.max_output, max(2 * request.max_tokens, room)))
            elif attempts >= 3 and attempt == attempts - 1:
                request = replace(request, messages=messages + [
                    {"role": "assistant", "content": unfit.text},
                    {"role": "user", "content": f"That answer does not fit the required JSON schema: {unfit}. "
                                                "Reply again with JSON only."}])
            else:
                request = replace(request, seed=derived_seed(self.seed, first.content_key(), attempt),
                                  temperature=max(first.temperature, RESAMPLE_TEMPERATURE))
        error = StructuredOutputError(
            f"{role} call to {card.name} gave no answer that fits {schema.__name__} in {attempts} attempts: "
            f"{unfit}; last answer: {unfit.text[:300]!r}")
        error.role, error.request_key, error.attempts = role, first.key(), attempts
        raise error

    async def stream(self, role: str, messages: list[dict], *, temperature: float | None = None,
                     max_tokens: int | None = None) -> AsyncIterator[str]:
        """Free text from the role's model, piece by piece as it is written: for talking with a character,
        where a reader wants the words as they come, not a schema. Cached, budgeted and written to the
        ledger like any call; a cached answer comes as one piece. A transient failure is retried only
        before the first piece; after it, the caller has shown words and the call fails as it stands."""
        model = self._chains[role][0]
        card = model.card
        request = _request(card, messages=messages, json_schema={},
                           temperature=card.temperature if temperature is None else temperature,
                           max_tokens=min(max_tokens or FREE_TEXT_TOKENS, card.max_output), seed=self.seed)
        record = _record(role, request)
        if (hit := self._cached(role, request, record)) is not None:
            record.answer = hit.text
            self.on_call(record)
            yield hit.text
            return
        started = time.perf_counter()
        async with self._all_calls, model.limit.slot() as slot:
            reservation = self._reserve(card, request)
            completion = None
            try:
                async for piece in self._pieces(model, slot, role, request, record):
                    if isinstance(piece, Completion):
                        completion = piece
                    else:
                        yield piece
                if completion is None:
                    raise ProviderError(f"{role} call to {card.name}: the stream ended without an answer")
            except BaseException as exc:
                self.budget.release(reservation)
                record.latency_ms = (time.perf_counter() - started) * 1000
                record.error = str(exc) if isinstance(exc, (ProviderError, AccountError)) else \
                    f"stopped: {type(exc).__name__}"
                self.on_call(record)
                raise
        self._settle(card, reservation, record, completion, started)
        record.answer = completion.text
        if self.cache_mode == "read_write":
            self.cache.put(record.request_key, request.provider, request.model, completion)
        self.on_call(record)

    async def _pieces(self, model: _Model, slot: Slot, role: str, request: Request,
                      record: CallRecord) -> AsyncIterator[str | Completion]:
        """The provider's stream: text pieces, then the whole Completion. Opening it and reading its first
        piece is one retried step."""
        async def opening():
            pieces = aiter(model.provider.stream(request))
            return pieces, await anext(pieces)

        (pieces, first), record.attempts = await with_retries(lambda: slot.run(opening), self.policy,
                                                              f"{role} call to {model.card.name}", self._jitter)
        yield first
        async for piece in pieces:
            yield piece

    async def _attempt(self, model: _Model, role: str, request: Request, schema: type[T]) -> T:
        """One request, answered from the cache or the provider, parsed, and written to the ledger."""
        record = _record(role, request)
        completion = self._cached(role, request, record)
        if completion is None:
            completion = await self._send(model, role, request, record)
            if self.cache_mode == "read_write":
                self.cache.put(record.request_key, request.provider, request.model, completion)
        record.answer = completion.text
        try:
            answer = _parse(schema, completion)
        except _Unfit as exc:
            record.error = f"unusable answer: {exc}"
            raise
        finally:
            self.on_call(record)
        return answer

    def _cached(self, role: str, request: Request, record: CallRecord) -> Completion | None:
        """The cached answer to `request` (its tokens go on the ledger line, marked cached), or None when it
        must be sent; under cache.mode=replay a miss is an error instead."""
        if self.cache_mode != "off" and (hit := self.cache.get(record.request_key)) is not None:
            record.tokens_in, record.tokens_out, record.cached = hit.tokens_in, hit.tokens_out, True
            return hit
        if self.cache_mode == "replay":
            raise ReplayMiss(f"cache.mode=replay: no cached answer for the {role} call to {request.model} "
                             f"(key {record.request_key[:12]}, {len(request.messages)} messages, last: "
                             f"{request.messages[-1]['content'][:120]!r})")
        return None

    def _reserve(self, card: ModelCard, request: Request):
        """Admit the call's worst case under the budget: its prompt at a token per 2 characters (tokenizers
        rarely spend more) plus its whole max output."""
        worst_in = request.prompt_chars() // 2 + 1
        return self.budget.admit(price(card, worst_in, request.max_tokens), worst_in + request.max_tokens)

    async def _send(self, model: _Model, role: str, request: Request, record: CallRecord) -> Completion:
        """To the provider, with retries, inside the model's (adaptive) and the run's concurrency limits. The
        budget reserves the call's worst case once it holds a slot, and settles it when the call returns."""
        started = time.perf_counter()
        async with self._all_calls, model.limit.slot() as slot:
            reservation = self._reserve(model.card, request)
            try:
                completion, record.attempts = await with_retries(
                    lambda: slot.run(lambda: model.provider.complete(request)), self.policy,
                    f"{role} call to {model.card.name}", self._jitter)
            except BaseException as exc:
                self.budget.release(reservation)
                if isinstance(exc, (ProviderError, AccountError)):
                    record.error, record.attempts = str(exc), getattr(exc, "attempts", 1)
                    record.latency_ms = (time.perf_counter() - started) * 1000
                    self.on_call(record)
                if isinstance(exc, ProviderError):
                    exc.role, exc.request_key = role, record.request_key
                raise
        self._settle(model.card, reservation, record, completion, started)
        return completion

    def _settle(self, card: ModelCard, reservation, record: CallRecord, completion: Completion,
                started: float) -> None:
        """A call came back: the ledger line gets its time, tokens and cost, and the budget its real spend."""
        record.latency_ms = (time.perf_counter() - started) * 1000
        record.tokens_in, record.tokens_out = completion.tokens_in, completion.tokens_out
        record.tokens_reused = completion.tokens_reused
        at_card = price(card, completion.tokens_in, completion.tokens_out)
        record.cost_usd = completion.cost_usd if completion.cost_usd is not None else at_card
        self.budget.settle(reservation, record.cost_usd, completion.tokens_in + completion.tokens_out, at_card)

    async def close(self) -> None:
        for model in self._models.values():
            await model.provider.close()
