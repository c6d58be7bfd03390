"""OpenAI-compatible chat completions over httpx: OpenRouter, DeepSeek, vLLM, Ollama, llama_cpp.server.

This module knows the wire format and which failures are transient; the gateway owns retries.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx

from ..errors import AccountError, ProviderError, TransientError
from ..request import Completion, Request

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}
ACCOUNT_STATUS = {401, 402, 403}  # bad key, no credit, forbidden: no other call would fare better
# Too many requests, unavailable, overloaded (529, Anthropic's, passed on by gateways): the server asks for
# less load. Other 5xx and timeouts say a call broke, not that it was one too many; fewer at once won't help.
THROTTLE_STATUS = {429, 503, 529}


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
        except (TypeError, ValueError):
            return None


def _schema_instruction(schema: dict) -> str:
    return ("Answer with a single JSON object, and nothing else, that matches this JSON schema:\n"
            + json.dumps(schema, separators=(",", ":")))


class OpenAICompatibleProvider:
    def __init__(self, card):
        self.card = card
        key = os.environ.get(card.api_key_env) if card.api_key_env else None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.AsyncClient(base_url=card.base_url.rstrip("/"), headers=headers,
                                         timeout=httpx.Timeout(card.timeout_s))

    def body(self, request: Request) -> dict:
        """The request as this card's endpoint wants it, structured-output mode included."""
        messages = [dict(m) for m in request.messages]
        body = {
            "model": request.model, "temperature": request.temperature, "top_p": request.top_p,
            "max_tokens": request.max_tokens, "frequency_penalty": request.frequency_penalty,
            "presence_penalty": request.presence_penalty, "seed": request.seed,
        }
        mode = self.card.structured_output
        if not request.json_schema:
            pass  # free text: no response format
        elif mode == "json_schema":
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": request.json_schema}}
        elif mode == "grammar":
            body["response_format"] = {"type": "json_object", "schema": request.json_schema}
        else:
            body["response_format"] = {"type": "json_object"}
            if messages and messages[0]["role"] == "system":
                messages[0]["content"] += "\n\n" + _schema_instruction(request.json_schema)
            else:
                messages.insert(0, {"role": "system", "content": _schema_instruction(request.json_schema)})
        body["messages"] = messages
        return body

    def _refusal(self, response: httpx.Response) -> Exception:
        """A non-200 answer as the error it is: transient (retry), the account's (stop), or this call's."""
        detail = response.text[:200].replace("\n", " ")
        message = f"HTTP {response.status_code} from {self.card.base_url}: {detail}"
        if response.status_code in RETRYABLE_STATUS:
            return TransientError(message, _retry_after(response.headers),
                                  throttled=response.status_code in THROTTLE_STATUS)
        if response.status_code in ACCOUNT_STATUS:
            return AccountError(message)
        return ProviderError(message)

    @staticmethod
    def _error_in_answer(error) -> Exception:
        """OpenRouter reports mid-generation failures inside a 200 (or a stream event)."""
        code = error.get("code") if isinstance(error, dict) else None
        message = f"error in answer: {json.dumps(error)[:200]}"
        if code in RETRYABLE_STATUS or code is None:
            return TransientError(message, throttled=code in THROTTLE_STATUS)
        if code in ACCOUNT_STATUS:
            return AccountError(message)
        return ProviderError(message)

    async def complete(self, request: Request) -> Completion:
        try:
            response = await self._client.post("/chat/completions", json=self.body(request))
        except httpx.TimeoutException:
            raise TransientError(f"no answer within {self.card.timeout_s:g}s") from None
        except httpx.TransportError as exc:
            raise TransientError(f"connection failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise self._refusal(response)
        try:
            data = response.json()
        except ValueError:
            raise TransientError("answer is not JSON: " + response.text[:120].replace("\n", " ")) from None
        if "error" in data:
            raise self._error_in_answer(data["error"] or {})
        try:
            choice = data["choices"][0]
            content = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise TransientError("answer has no choices[0].message") from None
        if not content.strip():
            raise TransientError("empty content")
        return self._completion(request, content, data.get("usage") or {}, choice.get("finish_reason"))

    async def stream(self, request: Request):
        """Server-sent events (`stream: true`), asking for usage in the last event where the server offers it."""
        body = {**self.body(request), "stream": True, "stream_options": {"include_usage": True}}
        text, usage, finish = [], {}, None
        try:
            async with self._client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise self._refusal(response)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        finish = finish or "stop"
                        break
                    try:
                        event = json.loads(data)
                    except ValueError:
                        raise TransientError("stream event is not JSON: " + data[:120]) from None
                    if "error" in event:
                        raise self._error_in_answer(event["error"] or {})
                    usage = event.get("usage") or usage
                    for choice in event.get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            text.append(piece)
                            yield piece
                        finish = choice.get("finish_reason") or finish
        except httpx.TimeoutException:
            raise TransientError(f"no answer within {self.card.timeout_s:g}s") from None
        except httpx.TransportError as exc:
            raise TransientError(f"connection failed: {type(exc).__name__}") from None
        if finish is None:  # neither a finish reason nor [DONE]: the connection ended mid-answer
            raise TransientError(f"the stream ended mid-answer after {len(text)} pieces")
        content = "".join(text)
        if not content.strip():
            raise TransientError("empty content")
        yield self._completion(request, content, usage, finish)

    @staticmethod
    def _completion(request: Request, content: str, usage: dict, finish: str | None) -> Completion:
        """A server that reports no usage (llama_cpp.server when streaming) is counted at four characters a
        token, never as free, and never past the answer's max_tokens."""
        cost = usage.get("cost")
        return Completion(text=content,
                          tokens_in=int(usage.get("prompt_tokens") or request.prompt_chars() // 4 + 1),
                          tokens_out=int(usage.get("completion_tokens")
                                         or min(len(content) // 4 + 1, request.max_tokens)),
                          cost_usd=float(cost) if cost is not None else None, finish_reason=finish)

    async def close(self) -> None:
        await self._client.aclose()
