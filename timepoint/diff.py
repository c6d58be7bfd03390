"""Diff two runs: what was asked differently (config) and what came out differently (outcome).

The config is read from each run's `.hydra/config.yaml`, unresolved, so `${oc.env:...}` defaults compare
as written rather than as each machine resolved them. When either run lacks `.hydra/`, both fall back
to the resolved config the run store keeps (`runs.config_json`).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .convergence import convergence
from .history import opened

SETTING_FIELDS = ("status", "template", "mode", "model", "seed")
MEASURE_FIELDS = ("llm_calls", "cached_calls", "tokens_in", "tokens_out", "cost_usd", "duration_s")
COUNT_FIELDS = ("entities", "timepoints", "dialogs", "turns", "exposure_events", "timelines", "gaps")
PAIR_FIELDS = ("causal", "knowledge", "outcome_similarity", "divergence_index")


def _hydra_config(run_dir: Path) -> Path:
    return Path(run_dir) / ".hydra" / "config.yaml"


def _stored_config(run_dir: Path) -> dict:
    with opened(run_dir) as h:
        return h.run.config


def load_configs(run_a: Path, run_b: Path) -> tuple[dict, dict, str]:
    """Both configs from one source, so that resolution alone never shows as a difference."""
    if _hydra_config(run_a).is_file() and _hydra_config(run_b).is_file():
        a, b = (yaml.safe_load(_hydra_config(d).read_text()) or {} for d in (run_a, run_b))
        return a, b, ".hydra/config.yaml"
    return _stored_config(run_a), _stored_config(run_b), "runs.config_json"


def flatten(config: dict, prefix: str = "") -> dict:
    """Dotted keys to leaf values; lists stay whole (an enabled-mechanism list is one setting)."""
    flat = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def config_diff(a: dict, b: dict) -> dict:
    """Only what differs: keys in both with other values, and keys one run has and the other lacks."""
    fa, fb = flatten(a), flatten(b)
    return {"changed": {k: {"a": fa[k], "b": fb[k]} for k in sorted(fa.keys() & fb.keys()) if fa[k] != fb[k]},
            "only_a": {k: fa[k] for k in sorted(fa.keys() - fb.keys())},
            "only_b": {k: fb[k] for k in sorted(fb.keys() - fa.keys())}}


def outcome(run_dir: Path) -> dict:
    with opened(run_dir) as h:
        run, counts = h.run, h.counts()
    return {"run_id": run.id, **{f: getattr(run, f) for f in (*SETTING_FIELDS, *MEASURE_FIELDS)},
            **{f: counts[f] for f in COUNT_FIELDS}}


def diff(run_a: Path, run_b: Path) -> dict:
    """Config and outcome of two runs side by side, and how far their stories converge."""
    config_a, config_b, source = load_configs(run_a, run_b)
    out_a, out_b = outcome(run_a), outcome(run_b)
    pair = convergence([run_a, run_b])
    return {
        "a": {"run_id": out_a["run_id"], "run_dir": str(run_a)},
        "b": {"run_id": out_b["run_id"], "run_dir": str(run_b)},
        "config_source": source,
        "config": config_diff(config_a, config_b),
        "outcome": {f: {"a": out_a[f], "b": out_b[f]} for f in (*SETTING_FIELDS, *MEASURE_FIELDS, *COUNT_FIELDS)},
        "convergence": {"score": pair["score"], "grade": pair["grade"],
                        **{k: pair["pairs"][0][k] for k in PAIR_FIELDS}},
    }


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _delta(field: str, a, b) -> str:
    """B minus A for what was measured or counted; a mark for any other difference."""
    if a == b:
        return ""
    if field in SETTING_FIELDS or None in (a, b):
        return "*"
    return f"{b - a:+.4f}" if isinstance(a, float) or isinstance(b, float) else f"{b - a:+d}"


def _table(rows: list[tuple[str, str, str, str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[3]).rstrip() for row in rows]


def _config_rows(config: dict) -> list[tuple[str, str, str, str]]:
    rows = [(k, _show(v["a"]), _show(v["b"]), "") for k, v in config["changed"].items()]
    rows += [(k, _show(v), "(absent)", "") for k, v in config["only_a"].items()]
    return rows + [(k, "(absent)", _show(v), "") for k, v in config["only_b"].items()]


def render(result: dict) -> str:
    """Config differences, then outcome fields side by side (* or the change, B minus A, where they differ)."""
    a, b = result["a"], result["b"]
    header = ("", a["run_id"], b["run_id"], "")
    lines = [f"A: {a['run_dir']}", f"B: {b['run_dir']}", "", f"Config differences (from {result['config_source']}):"]
    config_rows = _config_rows(result["config"])
    lines += _table([header, *config_rows]) if config_rows else ["  none"]
    lines += ["", "Outcome:"]
    lines += _table([header, *((f, _show(v["a"]), _show(v["b"]), _delta(f, v["a"], v["b"]))
                               for f, v in result["outcome"].items())])
    c = result["convergence"]
    diverges = "nowhere" if c["divergence_index"] is None else f"at timepoint {c['divergence_index']}"
    lines += ["", f"Convergence: score {c['score']:.3f}, grade {c['grade']} (causal {c['causal']:.3f}, "
                  f"knowledge {c['knowledge']:.3f}, outcome similarity {c['outcome_similarity']:.3f}); "
                  f"diverges {diverges}"]
    return "\n".join(lines)
