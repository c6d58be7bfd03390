"""The embedded card's prompt budget on and off: the README's first command on the embedded model at the
same seeds with `model.prompt_budget` as the card sets it and with no budget (`model.prompt_budget=null`),
reporting the share of the lines characters wrote that the quality gate caught as degenerate (a copied
span of the prompt, a bare label, a repeat, ...), and the dialogs and turns kept.

    python benchmarks/prompt_budget.py [--seeds 1,42] [--out prompt_budget.json] [OVERRIDE ...]

A 135M model handed 1,200 tokens of dense context copies it back; the budget exists to stop that, and
this is the check that it does. Each run is its own process with a cold cache (embedded_default.py).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from embedded_default import run_seed, seeds

VARIANTS = {"budget": [], "no_budget": ["model.prompt_budget=null"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1,42")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args, overrides = parser.parse_known_args()
    rows = []
    print(f"{'variant':<10} {'seed':>4} {'status':<10} {'dialogs':>7} {'turns':>5} {'caught':>6} {'share':>6} "
          f"{'wall_s':>7}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for seed in seeds(args.seeds):
            for variant, extra in VARIANTS.items():
                sub = Path(folder) / variant
                sub.mkdir(exist_ok=True)
                r = {"variant": variant, **run_seed(seed, [*overrides, *extra], sub)}
                rows.append(r)
                print(f"{variant:<10} {seed:>4} {r['status']:<10} {r.get('dialogs', 0):>7} {r.get('turns', 0):>5} "
                      f"{r.get('caught', 0):>6} {r.get('degenerate_share') or 0:>6} {r['wall_s']:>7}"
                      + (f"  error: {r['error']}" if r.get("error") else ""), flush=True)
    totals = {}
    for variant in VARIANTS:
        mine = [r for r in rows if r["variant"] == variant]
        caught, turns = sum(r.get("caught", 0) for r in mine), sum(r.get("turns", 0) for r in mine)
        totals[variant] = {"caught": caught, "turns": turns,
                           "degenerate_share": round(caught / (caught + turns), 3) if caught + turns else None}
        print(f"{variant}: {caught} of {caught + turns} lines caught as degenerate "
              f"({totals[variant]['degenerate_share']}), {turns} turns kept")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "totals": totals}, indent=2) + "\n")


if __name__ == "__main__":
    main()
