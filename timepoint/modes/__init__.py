"""Temporal modes, by name. Each is `async def run(sim)`, building the timeline into the store."""

from . import forward

MODES = {"forward": forward.run}
