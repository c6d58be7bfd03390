"""Every config group option composes and validates; bad values are refused with the key named."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from timepoint.__main__ import check_choices
from timepoint.config import group_options, load_card, validate
from timepoint.errors import UserError
from timepoint.paths import CONF_DIR

GROUPS = ["mode", "model", "mechanisms", "budget", "exporters", "variations"]


def composed(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in group_options(g)])
def test_every_group_option_composes_and_validates(group, option, monkeypatch, tmp_path):
    monkeypatch.setenv("TIMEPOINT_HOME", str(tmp_path))
    cfg = validate(composed(f"{group}={option}"))
    chosen = getattr(cfg, group)
    assert chosen is not None
    if group in ("mode", "model"):
        assert chosen.name == option


@pytest.mark.parametrize("name", group_options("model"))
def test_a_card_named_in_roles_is_the_card_model_selects(name):
    GlobalHydra.instance().clear()
    assert load_card(name, "roles.judge") == validate(composed(f"model={name}")).model


def test_the_base_card_is_not_a_model():
    assert [o for o in group_options("model") if o.startswith("_")] == []
    with pytest.raises(UserError, match="model: unknown option '_base'; choose one of: deepseek"):
        check_choices(["model=_base"])
    with pytest.raises(UserError, match="roles.judge: unknown model '_base'"):
        load_card("_base", "roles.judge")


def test_default_is_the_embedded_model_and_cheap_template():
    cfg = validate(composed())
    assert (cfg.model.provider, cfg.template, cfg.mode) == ("local", "convergence_simple", None)
    assert cfg.model.training_safe and cfg.model.price_in == cfg.model.price_out == 0


@pytest.mark.parametrize("override,key", [
    ("budget.max_cost_usd=-1", "budget.max_cost_usd"),
    ("budget.max_calls=-5", "budget.max_calls"),
    ("model.price_in=-0.1", "model.price_in"),
    ("dialog.min_turns=1", "dialog.min_turns"),
    ("cache.mode=sometimes", "cache.mode"),
    ("mechanisms.enabled=[M1,M42]", "mechanisms.enabled"),
])
def test_bad_values_name_the_key(override, key):
    with pytest.raises(UserError, match=key.replace(".", r"\.")) as err:
        validate(composed(override))
    assert "\n" not in str(err.value)


def test_unknown_mechanism_lists_the_allowed_ones():
    with pytest.raises(UserError, match="M42.*allowed: M1, M2"):
        validate(composed("mechanisms.enabled=[M42]"))
