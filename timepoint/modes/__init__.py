"""Temporal modes, by name. Each module has `async def run(sim)`, which builds the timeline into
the store, and `plan(template, mode_config, dialog_config)`, the calls it will make, for estimates."""

from . import forward, portal

MODES = {"forward": forward, "portal": portal}
