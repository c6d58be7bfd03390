"""Hydra entry: compose → validate → engine → summary.  `python -m timepoint [overrides]`."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from . import config as config_module
from .engine import execute, prepare
from .errors import UserError
from .export.summary import console_lines
from .paths import CONF_DIR
from .scenario import load_template

log = logging.getLogger("timepoint")
# 0 completed, 1 failed, 2 user error (bad config or template), 3 stopped by a hard budget.
EXIT_CODES = {"completed": 0, "failed": 1, "budget_exhausted": 3}
GROUPS = ("mode", "model", "mechanisms", "budget", "exporters", "variations")


def check_choices(args: list[str]) -> list[str]:
    """Before Hydra composes: an unknown group option names the valid ones, and every template named is
    loaded and validated, so a sweep with one bad value is refused before any job runs. Returns the
    arguments, with `mode=` added when `mode.*` settings are given for the template's own mode."""
    overrides = [a for a in args if not a.startswith("-") and "=" in a]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException:
        return args  # Hydra reports its own syntax errors
    for o in parsed:
        group = o.key_or_group
        if group not in (*GROUPS, "template") or o.is_delete():
            continue
        chosen = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
        if group == "template":
            for ref in chosen:
                load_template(ref)
            continue
        options = config_module.group_options(group)
        for value in chosen:
            if value not in options:
                raise UserError(f"{group}: unknown option {value!r}; choose one of: {', '.join(options)}")
    keys = {o.key_or_group for o in parsed}
    if "mode" not in keys and any(k.startswith("mode.") for k in keys):
        return [*args, f"mode={_template_mode(parsed)}"]
    return args



def prepared(overrides: list[str]):
    """A run as `python -m timepoint OVERRIDES` would prepare it, without keys or calls (estimates,
    template prices, authoring)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return prepare(compose("config", overrides=check_choices(overrides)), need_keys=False)

def _template_mode(parsed) -> str:
    """The preferred mode of the template a run names (or the default template)."""
    refs = next((list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
                 for o in parsed if o.key_or_group == "template"),
                [OmegaConf.load(CONF_DIR / "config.yaml").template])
    modes = {load_template(ref)[0].mode for ref in refs}
    if len(modes) > 1:
        raise UserError(f"mode: the templates prefer different modes ({', '.join(sorted(modes))}); "
                        "say which with mode=NAME to set mode.* keys")
    return modes.pop()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def app(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        run = prepare(cfg)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    config_json = json.dumps(OmegaConf.to_container(cfg, resolve=True), sort_keys=True)
    try:
        summary = asyncio.run(execute(run, run_dir, config_json))
    except KeyboardInterrupt:
        print(f"interrupted; {run_dir} keeps everything finished. Run the same command again to resume "
              "(finished calls come from the cache).", file=sys.stderr)
        sys.exit(130)
    print(console_lines(summary, run_dir))
    if hydra_cfg.mode == RunMode.RUN:
        code = EXIT_CODES[summary["status"]]
        sys.exit(1 if code == 0 and summary["export_errors"] else code)  # a dataset that was not written


def main() -> None:
    try:
        sys.argv[1:] = check_choices(sys.argv[1:])
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    app()


if __name__ == "__main__":
    main()
