"""Pydantic models of the composed Hydra config: the one place config is validated."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Literal

from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from .errors import UserError, describe
from .mechanisms import MECHANISMS, REQUIRED
from .paths import CONF_DIR


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelCard(_Strict):
    """What Timepoint knows about a model: where it runs, what it may be used for, what it costs."""

    name: str
    provider: Literal["local", "test", "openai"]
    model_id: str
    path: str | None = Field(None, description="GGUF file for provider=local; null = the bundled SmolLM2")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint for provider=openai")
    api_key_env: str | None = Field(None, description="Environment variable holding the API key")
    api_key_required: bool = False
    license: str
    training_safe: bool = Field(description="Its licence allows training any model on its outputs")
    context_length: int = Field(gt=0)
    max_output: int = Field(gt=0)
    price_in: float = Field(0.0, ge=0, description="USD per million input tokens")
    price_out: float = Field(0.0, ge=0, description="USD per million output tokens")
    capabilities: list[str] = []
    structured_output: Literal["grammar", "json_schema", "json_object", "native"] = Field(
        description="grammar: decoded under a grammar from the schema (llama.cpp, in-process or server); "
                    "json_schema: OpenAI-style response_format; json_object: JSON mode plus the schema in "
                    "the prompt; native: the test model fills the schema itself")
    max_concurrency: int = Field(1, ge=1)
    timeout_s: float = Field(120.0, gt=0, description="Per-attempt timeout of one call")
    temperature: float = Field(0.7, ge=0, le=2)
    prompt_cache_mb: int = Field(0, ge=0, description="provider=local: memory (MB) for llama.cpp states of recent "
                                                     "prompts, so a prompt that starts as an earlier one did is "
                                                     "evaluated from where they part; 0: only the last prompt's")
    prompt_budget: int | None = Field(None, gt=0, description="Tokens the dialog's context may fill (sections "
                                                               "are cut by priority); null: no cap")

    @model_validator(mode="after")
    def _endpoint(self) -> ModelCard:
        if self.provider == "openai" and not self.base_url:
            raise ValueError(f"model {self.name!r} has provider openai but no base_url")
        return self


class ForwardMode(_Strict):
    name: Literal["forward"]
    description: str = ""


class PortalMode(_Strict):
    """Backward from a known endpoint to its origins (reference §3 PORTAL)."""

    name: Literal["portal"]
    description: str = ""
    backward_steps: int | None = Field(None, ge=1, le=100, description="null: the template's timepoints − 1")
    candidates_per_step: int = Field(ge=1, le=10, description="Antecedents generated per state per step")
    path_count: int = Field(ge=1, le=20, description="Paths kept; states are pruned above 3× this")
    coherence_threshold: float = Field(ge=0, le=1)
    exploration: Literal["reverse_chronological", "oscillating", "adaptive"]
    oscillation_threshold: int = Field(ge=1, description="adaptive: oscillate when steps exceed this")
    scoring: Literal["static", "simulation"]
    simulation_forward_steps: int = Field(ge=1, le=5)
    max_backtrack_depth: int = Field(ge=0, le=10)


class BranchingMode(_Strict):
    """Counterfactual timelines grown forward (reference §3 BRANCHING, M12)."""

    name: Literal["branching"]
    description: str = ""
    steps: int | None = Field(None, ge=1, le=100, description="null: the template's timepoints − 1")
    branch_count: int = Field(ge=1, le=10, description="Branches kept; states are pruned above 3× this")
    candidates_per_step: int = Field(ge=2, le=6, description="Divergent consequents at a branch point")
    coherence_threshold: float = Field(ge=0, le=1)


class CyclicalMode(_Strict):
    """Recurrence with escalation and prophecy (reference §3 CYCLICAL)."""

    name: Literal["cyclical"]
    description: str = ""
    cycle_length: int | None = Field(None, ge=2, le=50, description="null: the template's cycle.length, else 4")
    loops: int | None = Field(None, ge=2, le=20, description="null: timepoints // cycle_length, at least 2")
    path_count: int = Field(ge=1, le=5, description="Independent cycle histories generated and ranked")
    prophecy_accuracy: float = Field(ge=0, le=1, description="Confidence at which a prophecy counts as fulfilled")


class DirectorialMode(_Strict):
    """Five-act dramatic structure (reference §3 DIRECTORIAL)."""

    name: Literal["directorial"]
    description: str = ""
    steps: int | None = Field(None, ge=5, le=100, description="Scenes; null: the template's timepoints")
    path_count: int = Field(ge=1, le=5, description="Independent drafts of the story, ranked")
    dramatic_tension: float = Field(ge=0, le=1, description="Scales every act's tension target")


ModeConfig = Annotated[ForwardMode | PortalMode | BranchingMode | CyclicalMode | DirectorialMode,
                       Field(discriminator="name")]


class BudgetConfig(_Strict):
    kind: Literal["unlimited", "soft", "hard"]
    max_cost_usd: float | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=0)
    max_calls: int | None = Field(None, ge=0)


EXPORT_FORMATS = ("training", "chat", "backward", "counterfactual", "formatters", "tdf", "sqlite", "parquet", "csv",
                  "fountain", "markdown", "narrative", "html", "pdf")


class OxenConfig(_Strict):
    """Push the dataset to an Oxen repository; nothing leaves the machine unless enabled and OXEN_API_KEY is set."""

    enabled: bool = False
    repo: str | None = Field(None, description="namespace/name on the Oxen hub")
    host: str = "https://hub.oxen.ai"
    branch: str = "main"

    @model_validator(mode="after")
    def _repo_named(self) -> OxenConfig:
        if self.enabled and (not self.repo or self.repo.count("/") != 1):
            raise ValueError(f"exporters.oxen.repo must be 'namespace/name' when enabled, got {self.repo!r}")
        return self


class ExportersConfig(_Strict):
    formats: list[Literal[EXPORT_FORMATS]]
    compression: Literal["none", "gzip", "bz2"] = Field("none", description="For the line formats")
    oxen: OxenConfig = OxenConfig()


class VariationsConfig(_Strict):
    """Which variation of the template this run is (reference §9); see timepoint/variations.py."""

    strategy: Literal["none", "personalities", "knowledge", "relationships", "outcomes", "starting_conditions"]
    index: int = Field(0, ge=0, description="Which variation: with the seed, it fixes every random choice")
    magnitude: float = Field(0.3, ge=0, le=1, description="How far from the template a variation may move")


class MechanismsConfig(_Strict):
    enabled: list[str]

    @field_validator("enabled")
    @classmethod
    def _known(cls, ids: list[str]) -> list[str]:
        unknown = [m for m in ids if m not in MECHANISMS]
        if unknown:
            raise ValueError(f"unknown mechanism {unknown[0]!r}; allowed: {', '.join(MECHANISMS)}")
        missing = [m for m in REQUIRED if m not in ids]
        if missing:
            raise ValueError(f"{missing[0]} ({MECHANISMS[missing[0]]}) cannot be disabled: no run exists without "
                             f"it; allowed: any list that keeps {', '.join(REQUIRED)}")
        return ids


class DialogConfig(_Strict):
    min_turns: int = Field(ge=2)
    max_turns: int = Field(ge=2)
    max_participants: int = Field(ge=2)
    quality_every: int = Field(0, ge=0, description="Surface checks every N turns (0: at the end only)")
    semantic_check: bool = Field(True, description="A judge call scores each dialog that passes the surface checks")
    steering_horizon: int = Field(1, ge=1, le=16, strict=True,
                                  description="Turns one steering call plans (1: it decides every turn); fewer "
                                              "steering calls shorten the dialog's chain of dependent calls")

    @model_validator(mode="after")
    def _ordered(self) -> DialogConfig:
        if self.min_turns > self.max_turns:
            raise ValueError(f"min_turns ({self.min_turns}) is above max_turns ({self.max_turns})")
        return self


ROLES = ("scene", "dialog", "steering", "extraction", "judge", "summary")


class RolesConfig(_Strict):
    """M18: a model card name per kind of call; null means the run's model."""

    scene: str | None = None
    dialog: str | None = None
    steering: str | None = None
    extraction: str | None = None
    judge: str | None = None
    summary: str | None = None


class LLMConfig(_Strict):
    max_concurrency: int = Field(ge=1, description="Calls in flight at once, across all models")
    retries: int = Field(ge=0, description="Further attempts after a transient failure (429, 5xx, timeout)")
    backoff_s: float = Field(ge=0, description="First backoff; doubles per attempt, with jitter")
    backoff_max_s: float = Field(ge=0)
    structured_attempts: int = Field(3, ge=1, description="Requests per call: a cut-off answer gets more room, an "
                                                          "unfit one a resample, the last of three or more a repair")
    max_consecutive_failures: int = Field(10, ge=1, description="Failed calls in a row that stop the run (the "
                                                                "provider is down); fewer are skipped as gaps")


class CacheConfig(_Strict):
    mode: Literal["read_write", "off", "replay"]


class PathsConfig(_Strict):
    home: str = Field(description="Holds catalog.db (every run) and cache.db (model responses)")


class RunConfig(_Strict):
    template: str
    seed: int
    mode: ModeConfig | None = Field(None, description="null: the template's preferred mode")
    model: ModelCard
    roles: RolesConfig
    fallback: list[str] = Field(description="Model cards tried in order when a model keeps failing")
    for_training_data: bool = Field(description="Refuse models whose licence restricts training on outputs")
    llm: LLMConfig
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
    """The options of a config group; a file named _* is a partial other options extend, not an option."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))


@contextmanager
def _hydra_on_conf_dir() -> Iterator[None]:
    """Hydra's compose needs an initialized Hydra: the running app's when there is one, else one for the call."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        yield
        return
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield


def load_card(name: str, key: str) -> ModelCard:
    """A model card by name, for roles and fallbacks, composed as `model=NAME` composes it (a card extends
    the base card through its defaults list); `key` names where it was asked for."""
    from hydra import compose

    if name not in group_options("model"):
        raise UserError(f"{key}: unknown model {name!r}; choose one of: {', '.join(group_options('model'))}")
    with _hydra_on_conf_dir():
        raw = OmegaConf.to_container(compose(f"model/{name}").model, resolve=True)
    return ModelCard.model_validate(raw)


def load_mode(name: str) -> ModeConfig:
    """The mode config for a template's preferred mode, when `mode=` was not given."""
    if name not in group_options("mode"):
        raise UserError(f"mode: the template asks for mode {name!r}, which has no config; "
                        f"available: {', '.join(group_options('mode'))}")
    raw = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "mode" / f"{name}.yaml"))
    return TypeAdapter(ModeConfig).validate_python(raw)
