"""How a model call can fail, from the one call (a gap in the run) to the whole provider (the run stops)."""

from __future__ import annotations


class CallFailed(RuntimeError):
    """One call gave no usable answer after retries, resampling and repair: the unit of work it
    belongs to is skipped and recorded as a gap; the run goes on."""

    role: str | None = None
    request_key: str | None = None
    attempts: int = 1


class ProviderError(CallFailed):
    """The provider failed this call for good: a bad request, or transient failures past the retries."""


class TransientError(ProviderError):
    """A failure that may pass: 429, 5xx, timeout, dropped connection, garbled or empty answer.
    `throttled` when the provider said it has too much to do, so the gateway sends it less at once."""

    def __init__(self, message: str, retry_after: float | None = None, throttled: bool = False):
        super().__init__(message)
        self.retry_after, self.throttled = retry_after, throttled


class StructuredOutputError(CallFailed):
    """Every attempt's answer was cut off or did not fit the schema."""


class AccountError(RuntimeError):
    """The provider refuses the account (401, 402, 403): no call can succeed, so the run stops."""


class ProviderDown(RuntimeError):
    """Too many calls in a row failed: the provider is down, and skipping more work would only hollow
    out the run. It stops; the same command resumes it from the cache."""


class ReplayMiss(RuntimeError):
    """cache.mode=replay and the request is not in the cache."""
