"""PORTAL's concurrency: every call takes a fixed delay; how far under the sum of call latencies does
the run's wall time come, and how close to its longest chain of dependent calls?

    python benchmarks/portal_concurrency.py [--delay 0.05] [--template mars_mission_portal] [--horizons 1,2,3]
                                            [--concurrency 8] [--http] [OVERRIDE ...]

By default the test model answers in-process after the delay. `--http` sends every call over real sockets to
a local OpenAI-compatible server answering after the delay (tests/fault_server.py, no faults, schema-filled
answers as the test model fills them), through the openai_compatible card: the wire, httpx and the gateway's
adaptive concurrency limit are then in the time. Each horizon is a run with dialog.steering_horizon=K.

The longest chain: per backward step, generation then scoring (two calls deep, three with simulation
judging's forward step); per dialog, its steering and turn calls one after another, then one more for
the aftermath, whose extraction, reflections and judge run side by side.

Steering decides when a dialog ends, and how often it may is what the horizon changes (at horizon 1 every
decision may end it, at k only every k-th), so horizons compare the same work only with the dialogs' length
fixed: pass `dialog.min_turns=8 dialog.max_turns=8`. `lines` counts the lines the characters were asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from timepoint.config import load_card
from timepoint.engine import open_simulation
from timepoint.llm.providers.test import TestProvider
from timepoint.modes import portal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fault_server import FaultServer, request_schema  # noqa: E402 - found through the path just added


class Delayed(TestProvider):
    """The test model, answering every call after a fixed delay, counting calls by role."""

    def __init__(self, card, delay: float):
        super().__init__(card)
        self.delay, self.calls = delay, Counter()

    async def complete(self, request):
        self.calls[request.json_schema.get("title", "?")] += 1
        await asyncio.sleep(self.delay)
        return await super().complete(request)


async def timed_run(overrides: list[str], folder: str, providers: dict | None = None) -> tuple[float, object]:
    sim = await open_simulation([f"paths.home={folder}", "cache.mode=off", "mode=portal", *overrides], Path(folder),
                                providers)
    started = time.perf_counter()
    await portal.run(sim)
    wall = time.perf_counter() - started
    await sim.gateway.close()
    return wall, sim


async def measure(template: str, delay: float, overrides: list[str], http: bool) -> dict:
    """One PORTAL run; `titles` counts its calls by the schema each asked for."""
    overrides = [f"template={template}", *overrides]
    with tempfile.TemporaryDirectory() as folder:
        if http:
            with FaultServer(schema=True, delay=delay) as server:
                wall, sim = await timed_run(["model=openai_compatible", f"model.base_url={server.base_url}",
                                             "model.structured_output=json_schema", *overrides], folder)
                titles = Counter(request_schema(body).get("title", "?") for body in server.requests)
        else:
            provider = Delayed(load_card("test", "model"), delay)
            wall, sim = await timed_run(["model=test", *overrides], folder, {"test": provider})
            titles = provider.calls
        steering = titles["SteeringDecision"] + titles["SteeringPlan"]  # horizon 1, horizon k > 1
        aftermaths = sum(1 for _ in sim.store.rows("dialogs"))
        depth = 3 if sim.mode_config.scoring == "simulation" else 2
        chain = depth * portal.Portal(sim, sim.mode_config).steps + steering + titles["TurnDraft"] + aftermaths
        return {"calls": sum(titles.values()), "wall_s": wall, "chain": chain, "turns": titles["TurnDraft"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--template", default="mars_mission_portal")
    parser.add_argument("--horizons", default="1", help="dialog.steering_horizon per run, comma-separated")
    parser.add_argument("--concurrency", type=int, default=8, help="model.max_concurrency")
    parser.add_argument("--http", action="store_true", help="over HTTP to a local fixed-latency server")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    print(f"{args.template}, {'HTTP' if args.http else 'in-process'}, {args.delay * 1000:.0f} ms a call, "
          f"max_concurrency {args.concurrency}")
    print(f"{'horizon':>7} {'calls':>6} {'lines':>6} {'chain':>6} {'chain_rel':>9} {'wall_s':>7} {'wall/chain':>10} "
          f"{'wall/sum':>8}")
    first = None
    for horizon in [int(k) for k in args.horizons.split(",")]:
        r = asyncio.run(measure(args.template, args.delay, [f"dialog.steering_horizon={horizon}",
                                                            f"model.max_concurrency={args.concurrency}",
                                                            *args.overrides], args.http))
        first = first or r
        print(f"{horizon:>7} {r['calls']:>6} {r['turns']:>6} {r['chain']:>6} {r['chain'] / first['chain']:>9.2f} "
              f"{r['wall_s']:>7.2f} {r['wall_s'] / (r['chain'] * args.delay):>10.2f} "
              f"{r['wall_s'] / (r['calls'] * args.delay):>8.3f}")


if __name__ == "__main__":
    main()
