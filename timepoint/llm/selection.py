"""M18 model selection: which model card answers each kind of call, checked before any work starts."""

from __future__ import annotations

import os

from ..config import ROLES, ModelCard, RunConfig, group_options, load_card
from ..errors import UserError


def _card(cfg: RunConfig, name: str, key: str) -> ModelCard:
    """The run's own card (with its command-line overrides) when named, else the card file."""
    return cfg.model if name == cfg.model.name else load_card(name, key)


def model_chains(cfg: RunConfig) -> dict[str, list[ModelCard]]:
    """Role → the card that answers it (roles.X, else the run's model), then the fallback chain."""
    fallback = [_card(cfg, name, f"fallback[{i}]") for i, name in enumerate(cfg.fallback)]
    chains = {}
    for role in ROLES:
        name = getattr(cfg.roles, role)
        first = _card(cfg, name, f"roles.{role}") if name else cfg.model
        chains[role] = [first] + [c for c in fallback if c.name != first.name]
    return chains


def training_safe_models() -> list[str]:
    return [name for name in group_options("model") if load_card(name, "model").training_safe]


def check_models(chains: dict[str, list[ModelCard]], for_training_data: bool, need_keys: bool = True) -> None:
    """Refuse, before any work, a model the run may not use or cannot reach."""
    cards = {c.name: c for chain in chains.values() for c in chain}.values()
    for card in cards:
        if for_training_data and not card.training_safe:
            raise UserError(f"for_training_data=true: model {card.name!r} ({card.license}) restricts training "
                            f"on its outputs; training-safe models: {', '.join(training_safe_models())}")
        if need_keys and card.api_key_required and not os.environ.get(card.api_key_env or ""):
            raise UserError(f"model {card.name!r} needs an API key in the environment variable "
                            f"{card.api_key_env}; set it, or run on the embedded model with model=local")
