"""PORTAL's concurrency: every call takes a fixed delay; how far under the sum of call latencies does
the run's wall time come, and how close to its longest chain of dependent calls?

    python benchmarks/portal_concurrency.py [--delay 0.05] [--template mars_mission_portal]

The longest chain: per backward step, generation then scoring (two calls deep, three with simulation
judging's forward step); per dialog, its steering, turn and judge calls one after another, then one
more for the aftermath, whose extraction and reflections run side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

from timepoint.engine import open_simulation
from timepoint.llm.providers.test import TestProvider
from timepoint.modes import portal


class Delayed(TestProvider):
    """The test model, answering every call after a fixed delay, counting calls by role."""

    def __init__(self, card, delay: float):
        super().__init__(card)
        self.delay, self.calls = delay, Counter()

    async def complete(self, request):
        self.calls[request.json_schema.get("title", "?")] += 1
        await asyncio.sleep(self.delay)
        return await super().complete(request)


async def measure(template: str, delay: float, overrides: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        from timepoint.config import load_card
        provider = Delayed(load_card("test", "model"), delay)
        sim = await open_simulation(["model=test", f"template={template}", f"paths.home={folder}",
                                     "cache.mode=off", "mode=portal", *overrides], Path(folder), {"test": provider})
        started = time.perf_counter()
        await portal.run(sim)
        wall = time.perf_counter() - started
        calls = sum(provider.calls.values())
        dialogs = provider.calls["SemanticCheck"] + 0  # one judge per scored dialog
        turns = provider.calls["TurnDraft"]
        steering = provider.calls["SteeringDecision"]
        scored_dialogs = sum(1 for _ in sim.store.rows("dialogs"))
        depth = 3 if sim.mode_config.scoring == "simulation" else 2
        chain = depth * portal.Portal(sim, sim.mode_config).steps + steering + turns + dialogs + scored_dialogs
        return {"calls": calls, "wall_s": wall, "sum_of_latencies_s": calls * delay, "chain": chain,
                "chain_s": chain * delay}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--template", default="mars_mission_portal")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    r = asyncio.run(measure(args.template, args.delay, args.overrides))
    print(f"{args.template}: {r['calls']} calls of {args.delay * 1000:.0f} ms; wall {r['wall_s']:.2f} s")
    ratio = r["wall_s"] / r["sum_of_latencies_s"]
    print(f"  wall / sum of call latencies ({r['sum_of_latencies_s']:.1f} s): {ratio:.3f}")
    print(f"  wall / longest dependent chain ({r['chain']} calls, {r['chain_s']:.1f} s): "
          f"{r['wall_s'] / r['chain_s']:.2f}")


if __name__ == "__main__":
    main()
