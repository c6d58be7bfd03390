"""Errors that end a run with a message instead of a traceback."""

from pydantic import ValidationError


class UserError(Exception):
    """A mistake in what the user asked for: bad config, missing template, bad field.

    The message names the key, the bad value and what is allowed. Exit code 2.
    """


class SimulationError(RuntimeError):
    """A mode could not build a timeline from what the model gave it."""


class BudgetExhausted(Exception):
    """The next model call would cross a hard budget cap."""


def describe(err: ValidationError, what: str) -> str:
    """The first problem of a pydantic error as one line: where, what is wrong, the value given."""
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    got = first.get("input")
    shown = f"; got {got!r}" if first["type"] != "missing" and not isinstance(got, dict) else ""
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{what} {where}: {first['msg']}{shown}{more}"
