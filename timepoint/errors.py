"""Errors that end a run with a message instead of a traceback."""


class UserError(Exception):
    """A mistake in what the user asked for: bad config, missing template, bad field.

    The message names the key, the bad value and what is allowed. Exit code 2.
    """


class BudgetExhausted(Exception):
    """The next model call would cross a hard budget cap."""
