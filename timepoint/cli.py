"""The `timepoint` command: post-run tools, or a run when given only overrides.

    timepoint [overrides]                 same as python -m timepoint [overrides]
    timepoint list                        the scenario templates
    timepoint list runs                   every run in the catalog
    timepoint export RUN [--format F] [--out DIR]
    timepoint estimate [overrides]        predicted calls, tokens and dollars; calls no model
    timepoint query RUN ENTITY "question" ask an entity of a finished run, in character (M5)
    timepoint chat RUN ENTITY [--at TP] [--context FILE] [--batch "question" ...]   talk with a character
    timepoint convergence RUN RUN...      how far runs of one scenario agree (causal and knowledge edges)
    timepoint diff RUN_A RUN_B            config and outcome differences, side by side
    timepoint collect DIR... --out DATASET merge runs (a sweep) into one deduplicated dataset
    timepoint new "premise" [--entities N] [--timepoints N] [--run]   the model writes a template
    timepoint serve [--host H] [--port P] [--home DIR] [--token T] [--budget-usd X]   API and dashboard
    timepoint cache stats|prune --older-than 30d|clear [--home DIR]   the response cache of a home
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from .config import EXPORT_FORMATS
from .errors import UserError
from .export import exporter
from .llm import ResponseCache
from .paths import default_home
from .scenario import available_templates, load_template
from .store import Catalog, open_run


def _list(args: argparse.Namespace) -> None:
    if args.what == "runs":
        for r in _catalogued():
            print(f"{r['run_id']}  {r['status']:<16} {r['template']:<22} {r['mode']:<8} {r['model']:<10} "
                  f"${r['cost_usd'] or 0:.4f}  {r['created_at']}  {r['run_dir']}")
        return
    names = available_templates()
    width = max(map(len, names), default=0)
    print(f"{'template':<{width}}  {'mode':<11} {'tier':<13} {'E':>2} {'T':>3}  {'est. ' + args.model:>14}  "
          "mechanisms / title")
    from .__main__ import prepared

    for name in names:
        t, _ = load_template(name)
        cost = prepared([f"template={name}", f"model={args.model}"]).estimate().cost_usd
        print(f"{name:<{width}}  {t.mode:<11} {t.tier:<13} {len(t.entities):>2} {t.timepoints:>3}  "
              f"{'$' + format(cost, '.4f'):>14}  "
              f"{','.join(t.mechanisms) or '-'}  {t.title}")


def _catalogued() -> list[dict]:
    """Every catalogued run; none (and no catalog created) when this home has never run."""
    path = default_home() / "catalog.db"
    if not path.is_file():
        return []
    catalog = Catalog(path)
    try:
        return catalog.runs()
    finally:
        catalog.close()


def resolve_run_dir(ref: str) -> Path:
    """RUN is a run directory, a run id from the catalog, or `last`; the directory must hold its run.db."""
    if Path(ref, "run.db").is_file():
        return Path(ref)
    runs = _catalogued()
    match = runs[-1:] if ref == "last" else [r for r in runs if r["run_id"] == ref]
    if not match:
        if Path(ref).is_dir():
            raise UserError(f"run: {ref} holds no run.db; give a run directory, a run id or 'last' "
                            "(see `timepoint list runs`)")
        raise UserError(f"run: no run directory or catalogued run {ref!r}; see `timepoint list runs`")
    run_dir = Path(match[0]["run_dir"])
    if not (run_dir / "run.db").is_file():
        named = f"{ref!r} ({match[0]['run_id']})" if ref == "last" else repr(ref)
        raise UserError(f"run: {named} is catalogued at {run_dir}, which holds no run.db now (moved or deleted); "
                        "give the run directory where it is now")
    return run_dir


def _export(args: argparse.Namespace) -> None:
    run_dir = resolve_run_dir(args.run)
    store = open_run(run_dir)
    out = Path(args.out) if args.out else run_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
        for path in exporter(args.format)(store, out, args.compression):
            print(path)
    finally:
        store.close()


def _estimate(args: argparse.Namespace) -> None:
    from .__main__ import prepared

    run = prepared(args.overrides)
    est = run.estimate()
    cfg = run.config
    print(f"{cfg.template} ({run.mode.name}) on {cfg.model.name}: {est.calls} calls, "
          f"{est.tokens_in} tokens in, {est.tokens_out} out, ${est.cost_usd:.4f}")
    for role, count in est.by_role.items():
        if count:
            print(f"  {role:<11} {count:>5} calls  on {run.chains[role][0].name}")


def _query(args: argparse.Namespace) -> None:
    import asyncio

    from .query import ask

    reply = asyncio.run(ask(resolve_run_dir(args.run), args.entity, args.question))
    print(reply["answer"])
    change = (f"resolution {reply['resolution_before']} -> {reply['resolution_after']}, "
              f"{len(reply['new_knowledge'])} new knowledge items"
              if reply["resolution_after"] != reply["resolution_before"] else f"resolution {reply['resolution_after']}")
    print(f"({reply['intent']} question; {change})", file=sys.stderr)


def _chat(args: argparse.Namespace) -> None:
    import asyncio

    from .chat import talk

    context = None
    if args.context:
        try:
            context = Path(args.context).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise UserError(f"--context: cannot read {args.context}: {exc.strerror}") from None
    questions = args.batch if args.batch else _typed(f"Talking with {args.entity}; an empty line or Ctrl-D ends.")
    asyncio.run(talk(resolve_run_dir(args.run), args.entity, args.at, questions, sys.stdout, context))


def _typed(greeting: str):
    """Questions typed at a prompt, until an empty line, end of input or Ctrl-C."""
    print(greeting, file=sys.stderr)
    while True:
        try:
            question = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return
        if not question:
            return
        yield question


def _convergence(args: argparse.Namespace) -> None:
    from .convergence import convergence, render

    result = convergence([resolve_run_dir(r) for r in args.runs])
    print(render(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


def _diff(args: argparse.Namespace) -> None:
    from .diff import diff, render

    print(render(diff(resolve_run_dir(args.run_a), resolve_run_dir(args.run_b))))


def _collect(args: argparse.Namespace) -> None:
    """Collect, then audit the runs the dataset came from (audit.json beside it); exit 1 on a violation."""
    from .analysis import audit
    from .collect import collect, render

    report = collect([Path(s) for s in args.sources], Path(args.out), args.threshold)
    print(render(report))
    audits = audit.audit([Path(r["run_dir"]) for r in report["runs"]["collected"]])
    (Path(args.out) / "audit.json").write_text(json.dumps(audit.report(audits), indent=2, ensure_ascii=False) + "\n")
    print(audit.render(audits))
    if any(a.violations for a in audits):
        sys.exit(1)


def _audit(args: argparse.Namespace) -> None:
    from .analysis import audit

    target = Path(args.run)
    folder_of_runs = target.is_dir() and not (target / "run.db").exists()
    audits = audit.audit([target if folder_of_runs else resolve_run_dir(args.run)])
    print(audit.render(audits))
    if args.out:
        Path(args.out).write_text(json.dumps(audit.report(audits), indent=2, ensure_ascii=False) + "\n")
    if any(a.violations for a in audits):
        sys.exit(1)


def _new(args: argparse.Namespace) -> None:
    import asyncio
    import subprocess

    from .__main__ import prepared
    from .authoring import save, write_template
    from .engine import model_session
    from .paths import TEMPLATES_DIR

    run = prepared([f"model={args.model}"])

    async def draft() -> dict:
        async with model_session(run.config, run.chains, lambda call: None) as gateway:
            return await write_template(gateway, args.premise, args.entities, args.timepoints)

    path = save(asyncio.run(draft()), Path(args.out) if args.out else TEMPLATES_DIR, args.name)
    print(path)
    if args.run:
        sys.exit(subprocess.call([sys.executable, "-m", "timepoint", f"template={path}", f"model={args.model}"]))


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _serve(args: argparse.Namespace) -> None:
    """Anywhere but loopback, anyone who reaches the port could spend the chat budget: a token is required."""
    import uvicorn

    from .server.app import create_app

    if args.host not in LOOPBACK and not args.token:
        raise UserError(f"serve: binding {args.host} exposes the runs and the chat budget to the network; "
                        "give a bearer token with --token or TIMEPOINT_SERVE_TOKEN")
    if args.budget_usd < 0:
        raise UserError(f"serve: --budget-usd must be 0 or more, not {args.budget_usd}")
    app = create_app(Path(args.home), token=args.token, budget_usd=args.budget_usd)
    print(f"serving the runs of {args.home} at http://{args.host}:{args.port}/ (API docs at /docs); Ctrl-C stops",
          file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


DURATION_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(text: str) -> float:
    """Seconds in a duration such as 30d, 12h or 90m: argparse's type for --older-than, so a bad one is
    refused with the flag named and exit 2."""
    match = re.fullmatch(r"([1-9][0-9]*)([mhdw])", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; allowed: a whole number above 0 and a unit, "
                                         "m (minutes), h (hours), d (days) or w (weeks), e.g. 30d")
    return int(match[1]) * DURATION_UNITS[match[2]]


def _size(count: int) -> str:
    """A byte count in B, KB, MB or GB: the largest unit that keeps it at 1 or more."""
    if count < 1024:
        return f"{count} B"
    scaled, unit = count / 1024, "KB"
    for larger in ("MB", "GB"):
        if scaled < 1024:
            break
        scaled, unit = scaled / 1024, larger
    return f"{scaled:.1f} {unit}"


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def _cache(args: argparse.Namespace) -> None:
    """Open the home's cache.db (upgrading an old one) for one action; none there is said, not created."""
    path = Path(args.home) / "cache.db"
    if not path.is_file():
        print(f"no cache at {path}: nothing has been cached in this home yet "
              "(the home is --home, else $TIMEPOINT_HOME, else .timepoint)")
        return
    try:
        cache = ResponseCache(path)
    except sqlite3.DatabaseError as exc:
        raise UserError(f"cache: {path} is not a readable response cache: {exc}") from None
    try:
        args.action(cache, args)
    finally:
        cache.close()


def _cache_stats(cache: ResponseCache, args: argparse.Namespace) -> None:
    stats = cache.stats()
    print(f"{cache.path}: {stats.entries} entries, {_size(stats.answer_bytes)} of answers, "
          f"{_size(cache.disk_bytes())} on disk")
    if stats.entries:
        print(f"oldest written {_when(stats.oldest)}, newest {_when(stats.newest)}; entries by provider and model:")
        width = max(len(provider) for provider, _, _ in stats.by_model)
        for provider, model, count in stats.by_model:
            print(f"  {count:>8}  {provider:<{width}}  {model}")


def _cache_prune(cache: ResponseCache, args: argparse.Namespace) -> None:
    cutoff = time.time() - args.older_than
    removed = cache.prune(cutoff)
    print(f"pruned {removed} entries neither written nor used since {_when(cutoff)}; "
          f"{cache.stats().entries} left, {_size(cache.disk_bytes())} on disk")


def _cache_clear(cache: ResponseCache, args: argparse.Namespace) -> None:
    removed = cache.clear()
    print(f"cleared {removed} entries from {cache.path}; {_size(cache.disk_bytes())} on disk")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="timepoint", description="Timepoint post-run tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list templates, or runs")
    p.add_argument("what", nargs="?", choices=["templates", "runs"], default="templates")
    p.add_argument("--model", default="deepseek", help="the model card estimated costs are for (default deepseek)")
    p.set_defaults(func=_list)
    p = sub.add_parser("export", help="export a past run")
    p.add_argument("run", help="run directory, run id, or 'last'")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="training")
    p.add_argument("--out", help="directory for the files (default: the run directory)")
    p.add_argument("--compression", choices=["none", "gzip", "bz2"], default="none",
                   help="for the line formats (JSONL, CSV)")
    p.set_defaults(func=_export)
    p = sub.add_parser("estimate", help="predict a run's calls, tokens and cost without calling a model")
    p.add_argument("overrides", nargs="*", help="overrides as for a run, e.g. template=board_meeting model=deepseek")
    p.set_defaults(func=_estimate)
    p = sub.add_parser("query", help="ask an entity of a finished run, in character")
    p.add_argument("run", help="run directory, run id, or 'last'")
    p.add_argument("entity", help="entity id, e.g. lin_zhang")
    p.add_argument("question")
    p.set_defaults(func=_query)
    p = sub.add_parser("chat", help="talk with a character of a finished run, as of its end or a timepoint")
    p.add_argument("run", help="run directory, run id, or 'last'")
    p.add_argument("entity", help="entity id, e.g. lin_zhang")
    p.add_argument("--at", metavar="TP", help="speak as of the end of this timepoint (default: the end of the run)")
    p.add_argument("--context", metavar="FILE", help="a document the character has been shown")
    p.add_argument("--batch", nargs="+", metavar="QUESTION", help="ask these in order, then stop (no prompt)")
    p.set_defaults(func=_chat)
    p = sub.add_parser("convergence", help="how far runs of one scenario agree")
    p.add_argument("runs", nargs="+", help="two or more run directories or run ids")
    p.add_argument("--out", help="also write the full result as JSON here")
    p.set_defaults(func=_convergence)
    p = sub.add_parser("diff", help="config and outcome differences between two runs")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.set_defaults(func=_diff)
    p = sub.add_parser("collect", help="merge runs (a sweep) into one deduplicated dataset")
    p.add_argument("sources", nargs="+", help="run directories, or directories holding them (a sweep)")
    p.add_argument("--out", required=True, help="the dataset folder to write")
    p.add_argument("--threshold", type=float, default=0.9, help="TF-IDF cosine at which a record is a duplicate")
    p.set_defaults(func=_collect)
    p = sub.add_parser("audit", help="check every record of a run or sweep against its store; exit 1 on a violation")
    p.add_argument("run", help="run directory, run id, 'last', or a folder of runs (a sweep)")
    p.add_argument("--out", help="also write every finding as JSON here")
    p.set_defaults(func=_audit)
    p = sub.add_parser("new", help="have the model write a template from a sentence")
    p.add_argument("premise", help='e.g. "CEO announces mandatory salary cuts due to a market downturn"')
    p.add_argument("--entities", type=int, default=4, choices=range(2, 13), metavar="N", help="cast size, 2-12")
    p.add_argument("--timepoints", type=int, default=3, choices=range(1, 51), metavar="N", help="1-50")
    p.add_argument("--model", default="local", help="the model card that writes it (default: the embedded one)")
    p.add_argument("--name", help="file name (default: from the premise)")
    p.add_argument("--out", help="directory to save in (default: templates/)")
    p.add_argument("--run", action="store_true", help="run it at once on the same model")
    p.set_defaults(func=_new)
    p = sub.add_parser("serve", help="the REST API, the dashboard and characters as chat models, over the catalog")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need a token)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--home", default=str(default_home()), help="the home whose catalog.db to serve "
                   "(default $TIMEPOINT_HOME or .timepoint)")
    p.add_argument("--token", default=os.environ.get("TIMEPOINT_SERVE_TOKEN") or None,
                   help="bearer token every request must carry (default $TIMEPOINT_SERVE_TOKEN)")
    p.add_argument("--budget-usd", type=float, default=1.0, help="hard cap on what chat requests may spend (USD)")
    p.set_defaults(func=_serve)
    _cache_parser(sub)
    return parser


def _cache_parser(sub) -> None:
    """`timepoint cache stats|prune|clear`, each taking --home."""
    home = argparse.ArgumentParser(add_help=False)
    home.add_argument("--home", default=str(default_home()), help="the home whose cache.db to act on "
                      "(default $TIMEPOINT_HOME or .timepoint)")
    actions = sub.add_parser("cache", help="the response cache: stats, prune or clear").add_subparsers(
        dest="action_name", metavar="stats|prune|clear", required=True)
    p = actions.add_parser("stats", parents=[home], help="entries, size, oldest and newest, entries per model")
    p.set_defaults(func=_cache, action=_cache_stats)
    p = actions.add_parser("prune", parents=[home], help="remove entries not written or used for a while")
    p.add_argument("--older-than", required=True, type=duration, metavar="DURATION",
                   help="e.g. 30d, 12h, 90m or 2w: entries neither written nor used within it go")
    p.set_defaults(func=_cache, action=_cache_prune)
    p = actions.add_parser("clear", parents=[home], help="remove every entry")
    p.set_defaults(func=_cache, action=_cache_clear)


COMMANDS = {"list", "export", "estimate", "query", "chat", "convergence", "diff", "collect", "audit", "new", "serve",
            "cache"}


def main() -> None:
    if len(sys.argv) > 1 and (sys.argv[1] in COMMANDS or sys.argv[1] in ("-h", "--help")):
        args = _parser().parse_args()
        try:
            args.func(args)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        return
    from .__main__ import main as run_main
    run_main()


if __name__ == "__main__":
    main()
