"""Temporal modes, by name. Each module has `async def run(sim)`, which builds the timeline into
the store, and `plan(template, mode_config, dialog_config)`, the calls it will make, for estimates;
a mode with needs of its template has `check(template, mode_config)`, which raises a UserError."""

from . import branching, cyclical, directorial, forward, portal

MODES = {"forward": forward, "portal": portal, "branching": branching, "cyclical": cyclical,
         "directorial": directorial}
