"""A deterministic test double: answers any JSON schema with an instance filled from the request's key.

Strings are drawn from the words of the whole prompt (system and user messages), so the output varies
with the scene and the speaker while the same request always gets the same answer.
"""

from __future__ import annotations

import json
import random
import re

from ..request import Completion, Request

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")


class TestProvider:
    __test__ = False  # not a pytest class

    def __init__(self, card):
        self.card = card

    async def complete(self, request: Request) -> Completion:
        rng = random.Random(request.key())
        words = _WORD.findall(" ".join(m["content"] for m in request.messages)) or ["nothing"]
        value = _fill(request.json_schema, request.json_schema, rng, words)
        text = json.dumps(value)
        return Completion(text=text, tokens_in=request.prompt_chars() // 4 + 1, tokens_out=len(text) // 4 + 1)

    async def stream(self, request: Request):
        """Two or three sentences from the prompt's words, a word at a time: the same request, the same words."""
        rng = random.Random(request.key())
        words = _WORD.findall(" ".join(m["content"] for m in request.messages)) or ["nothing"]
        text = " ".join(_sentence(rng, words, None) for _ in range(rng.randint(2, 3)))
        for n, word in enumerate(text.split(" ")):
            yield (" " if n else "") + word
        yield Completion(text=text, tokens_in=request.prompt_chars() // 4 + 1, tokens_out=len(text) // 4 + 1,
                         finish_reason="stop")

    async def close(self) -> None:
        return None


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _sentence(rng: random.Random, words: list[str], max_len: int | None) -> str:
    text = " ".join(rng.choice(words) for _ in range(rng.randint(6, 14)))
    text = text[0].upper() + text[1:] + "."
    return text[:max_len] if max_len else text


def _fill(schema: dict, root: dict, rng: random.Random, words: list[str]):
    schema = _resolve(schema, root)
    for union in ("anyOf", "oneOf"):
        if union in schema:
            options = [s for s in schema[union] if _resolve(s, root).get("type") != "null"]
            return _fill(options[0] if options else schema[union][0], root, rng, words)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _fill(sub, root, rng, words) for name, sub in props.items()}
    if kind == "array":
        cap = schema.get("maxItems", 3)
        lo = min(schema.get("minItems", 1), cap)
        hi = max(lo, min(cap, 3))
        count = rng.randint(lo, hi)
        items = _resolve(schema.get("items", {}), root)
        if schema.get("uniqueItems") and "enum" in items:
            return rng.sample(items["enum"], min(count, len(items["enum"])))
        return [_fill(items, root, rng, words) for _ in range(count)]
    if kind == "string":
        return _sentence(rng, words, schema.get("maxLength"))
    if kind == "integer":
        return rng.randint(int(schema.get("minimum", 0)), int(schema.get("maximum", 10)))
    if kind == "number":
        return round(rng.uniform(schema.get("minimum", 0.0), schema.get("maximum", 1.0)), 3)
    if kind == "boolean":
        return rng.random() < 0.5
    return None
