"""Pydantic models of the composed Hydra config: the one place config is validated."""

from __future__ import annotations

from typing import Literal

from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import UserError, describe
from .mechanisms import MECHANISMS
from .paths import CONF_DIR
from .scenario import ModeName


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelCard(_Strict):
    """What Timepoint knows about a model: where it runs, what it may be used for, what it costs."""

    name: str
    provider: Literal["local", "test"]
    model_id: str
    path: str | None = Field(None, description="GGUF file for provider=local; null = the bundled SmolLM2")
    license: str
    training_safe: bool
    context_length: int = Field(gt=0)
    max_output: int = Field(gt=0)
    price_in: float = Field(0.0, ge=0, description="USD per million input tokens")
    price_out: float = Field(0.0, ge=0, description="USD per million output tokens")
    structured_output: Literal["grammar", "json_schema", "json_object", "native"]
    max_concurrency: int = Field(1, ge=1)
    temperature: float = Field(0.7, ge=0, le=2)


class ModeConfig(_Strict):
    name: ModeName
    description: str = ""


class BudgetConfig(_Strict):
    kind: Literal["unlimited", "soft", "hard"]
    max_cost_usd: float | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=0)
    max_calls: int | None = Field(None, ge=0)


class ExportersConfig(_Strict):
    formats: list[Literal["training"]]


class VariationsConfig(_Strict):
    strategy: Literal["none"]
    index: int = Field(0, ge=0)


class MechanismsConfig(_Strict):
    enabled: list[str]

    @field_validator("enabled")
    @classmethod
    def _known(cls, ids: list[str]) -> list[str]:
        unknown = [m for m in ids if m not in MECHANISMS]
        if unknown:
            raise ValueError(f"unknown mechanism {unknown[0]!r}; allowed: {', '.join(MECHANISMS)}")
        return ids


class DialogConfig(_Strict):
    min_turns: int = Field(ge=2)
    max_turns: int = Field(ge=2)
    max_participants: int = Field(ge=2)

    @model_validator(mode="after")
    def _ordered(self) -> DialogConfig:
        if self.min_turns > self.max_turns:
            raise ValueError(f"min_turns ({self.min_turns}) is above max_turns ({self.max_turns})")
        return self


class CacheConfig(_Strict):
    mode: Literal["read_write", "off", "replay"]


class PathsConfig(_Strict):
    home: str = Field(description="Holds catalog.db (every run) and cache.db (model responses)")


class RunConfig(_Strict):
    template: str
    seed: int
    mode: ModeConfig | None = Field(None, description="null: the template's preferred mode")
    model: ModelCard
    mechanisms: MechanismsConfig
    budget: BudgetConfig
    exporters: ExportersConfig
    variations: VariationsConfig
    dialog: DialogConfig
    cache: CacheConfig
    paths: PathsConfig


def validate(cfg: DictConfig) -> RunConfig:
    """Resolve and validate a composed config; a mistake becomes one UserError line."""
    raw = OmegaConf.to_container(cfg, resolve=True)
    raw.pop("hydra", None)
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise UserError(describe(exc, 'config key')) from None


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def load_mode(name: str) -> ModeConfig:
    """The mode config for a template's preferred mode, when `mode=` was not given."""
    if name not in group_options("mode"):
        raise UserError(f"mode: the template asks for mode {name!r}, which has no config; "
                        f"available: {', '.join(group_options('mode'))}")
    return ModeConfig.model_validate(OmegaConf.to_container(OmegaConf.load(CONF_DIR / "mode" / f"{name}.yaml")))
