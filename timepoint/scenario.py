"""Scenario templates: the schema of a template file and its loader.

A template is data: premise, time span, cast and resources. `template=NAME` picks
`templates/NAME.yaml`; `template=path/to/file.yaml` picks any file.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .adprs import Envelope
from .errors import UserError, describe
from .mechanisms import MECHANISMS
from .paths import TEMPLATES_DIR

EntityType = Literal["human", "animal", "building", "object", "abstract", "ai", "any", "kami"]
TimeUnit = Literal["year", "quarter", "month", "week", "day", "hour", "minute", "second"]
ModeName = Literal["forward", "portal", "branching", "cyclical", "directorial"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VoiceGuide(_Strict):
    """How a character talks; fed to every turn that character writes."""

    sentence_length: str | None = None
    verbal_tics: list[str] = []
    never_says: list[str] = []
    disagreement_style: str | None = None
    specificity_anchors: list[str] = []


class Body(_Strict):
    """Physical facts that bear on the mind (M8): pain, fever, health, stamina."""

    pain: float = Field(0.0, ge=0, le=1)
    fever: float | None = Field(None, ge=30, le=43, description="°C; null: 36.5 for humans")
    health: float = Field(1.0, ge=0, le=1)
    stamina: float = Field(1.0, ge=0, le=1)


BIG_FIVE = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")


class StartingState(_Strict):
    """How an entity feels at the start, in the cognitive state's units; unset values follow its personality."""

    valence: float | None = Field(None, ge=-1, le=1)
    arousal: float | None = Field(None, ge=0, le=1)
    energy: float | None = Field(None, ge=0, le=100)
    confidence: float | None = Field(None, ge=0, le=1)
    patience: float | None = Field(None, ge=0, le=100)
    risk: float | None = Field(None, ge=0, le=1)
    social: float | None = Field(None, ge=0, le=1)


class RosterEntity(_Strict):
    """One member of the cast. Anything left out is filled by the model at scene set-up."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str | None = None
    type: EntityType = "human"
    role: Literal["primary", "secondary", "background", "environment"] = "primary"
    title: str | None = Field(None, description="Job or position in the scene, e.g. 'CEO'")
    description: str | None = None
    age: float | None = Field(None, ge=0)
    personality_traits: list[str] = []
    initial_knowledge: list[str] = []
    goals: list[str] = []
    voice_guide: VoiceGuide | None = None
    speech_examples: list[str] = []
    adprs: Envelope | None = Field(None, description="Activation waveform; sets how much a character engages")
    body: Body | None = None
    temperament: dict[Literal[BIG_FIVE], float] = Field(
        {}, description="Big Five in [0, 1]; set values replace what the trait words imply")
    start: StartingState | None = None

    @field_validator("temperament")
    @classmethod
    def _unit(cls, values: dict[str, float]) -> dict[str, float]:
        for name, value in values.items():
            if not 0 <= value <= 1:
                raise ValueError(f"temperament.{name} must be within [0, 1], got {value}")
        return values

    @property
    def display_name(self) -> str:
        return self.name or self.id.replace("_", " ").title()


class RosterRelationship(_Strict):
    a: str
    b: str
    type: Literal[
        "ally", "friend", "colleague", "acquaintance", "neutral", "rival", "enemy",
        "mentor", "student", "family", "other",
    ] = "neutral"
    trust: float | None = Field(None, ge=0, le=1)


class Resource(_Strict):
    """A quantity tracked through the run (oxygen, cash, food...)."""

    unit: str
    initial: float
    rate: float = Field(0.0, description="Change per timepoint")
    critical_threshold: float | None = None
    min: float | None = None
    max: float | None = None
    trigger_event: str | None = None

    @model_validator(mode="after")
    def _within_bounds(self) -> Resource:
        """min <= max, and the start and the threshold inside them: a clamped value can never leave
        [min, max], so a threshold outside it would never be crossed."""
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}; allowed: min <= max")
        low = -float("inf") if self.min is None else self.min
        high = float("inf") if self.max is None else self.max
        for name in ("initial", "critical_threshold"):
            value = getattr(self, name)
            if value is not None and not low <= value <= high:
                raise ValueError(f"{name} {value:g} is outside [min, max] = [{low:g}, {high:g}]; "
                                 f"allowed: {name} within them")
        return self


class TimeSpan(_Strict):
    start: datetime
    resolution: TimeUnit = Field("hour", description="The unit of time between timepoints (the template's key)")
    step: int = Field(1, ge=1, description="Units of `resolution` between consecutive timepoints")


class Scene(_Strict):
    title: str | None = None
    location: str | None = None
    opening_event: str | None = None
    capacity: int | None = Field(None, ge=1, description="How many people the place holds (crowd density, M10)")


class PortalSpec(_Strict):
    """The known endpoint a PORTAL run reasons back from; the origin is `time.start`."""

    endpoint: str = Field(min_length=20, description="What is known to have happened")
    at: datetime = Field(description="When it happened")


InterventionType = Literal["entity_removal", "entity_modification", "event_cancellation", "knowledge_alteration"]


class Intervention(_Strict):
    """A declared counterfactual for BRANCHING (M12): at `step` the timeline forks into a branch
    where this is true, and every later prompt on that branch carries it."""

    step: int = Field(ge=1, description="The step whose states fork into the counterfactual")
    type: InterventionType
    target: str = Field(min_length=1, description="An entity id; for event_cancellation, the event in words")
    description: str = Field(min_length=10, description="What is different, in words")
    traits: list[str] = Field([], description="entity_modification: the entity's traits from then on")
    goals: list[str] = Field([], description="entity_modification: the entity's goals from then on")
    learns: list[str] = Field([], description="knowledge_alteration: what the entity comes to know")
    forgets: list[str] = Field([], description="knowledge_alteration: initial knowledge the entity no longer has")

    @model_validator(mode="after")
    def _has_effect(self) -> Intervention:
        if self.type == "knowledge_alteration" and not (self.learns or self.forgets):
            raise ValueError(f"intervention on {self.target!r}: knowledge_alteration needs learns or forgets")
        return self


class CycleSpec(_Strict):
    """What recurs in a CYCLICAL scenario: how many timepoints one cycle has, and what they are called."""

    length: int = Field(ge=2, le=50, description="Timepoints per cycle")
    phases: list[str] = Field([], description="Optional names of the positions in a cycle, in order")

    @model_validator(mode="after")
    def _phases_fit(self) -> CycleSpec:
        if self.phases and len(self.phases) != self.length:
            raise ValueError(f"cycle.phases has {len(self.phases)} names but cycle.length is {self.length}")
        return self


class Template(_Strict):
    world_id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    premise: str = Field(min_length=20)
    mode: ModeName = "forward"
    time: TimeSpan
    timepoints: int = Field(ge=1, le=1000)
    scene: Scene = Scene()
    entities: list[RosterEntity] = Field(min_length=1)
    relationships: list[RosterRelationship] = []
    resources: dict[str, Resource] = {}
    portal: PortalSpec | None = None
    interventions: list[Intervention] = []
    cycle: CycleSpec | None = None
    animism_level: int | None = Field(None, ge=0, le=6, description="Which kinds of entity may speak (M16); "
                                      "null: whatever the cast needs")
    tier: Literal["quick", "standard", "comprehensive"] = Field(
        "standard", description="Size class: quick 1-4 entities, standard 3-8, comprehensive 5-12")
    mechanisms: list[str] = Field([], description="The mechanisms this scenario is meant to show (documentary)")

    @model_validator(mode="after")
    def _references_resolve(self) -> Template:
        if self.portal and self.portal.at <= self.time.start:
            raise ValueError(f"portal.at ({self.portal.at}) must come after time.start ({self.time.start})")
        ids = [e.id for e in self.entities]
        if len(set(ids)) != len(ids):
            raise ValueError(f"entity ids must be unique, got {ids}")
        unknown = [m for m in self.mechanisms if m not in MECHANISMS]
        if unknown:
            raise ValueError(f"mechanisms: unknown {unknown[0]!r}; allowed: {', '.join(MECHANISMS)}")
        for iv in self.interventions:
            if iv.type != "event_cancellation" and iv.target not in ids:
                raise ValueError(f"intervention {iv.type} names unknown entity {iv.target!r}; entities are {ids}")
        for rel in self.relationships:
            for end in (rel.a, rel.b):
                if end not in ids:
                    raise ValueError(f"relationship names unknown entity {end!r}; entities are {ids}")
        return self

    def entity(self, entity_id: str) -> RosterEntity:
        return next(e for e in self.entities if e.id == entity_id)


def available_templates() -> list[str]:
    return sorted(p.stem for p in TEMPLATES_DIR.glob("*.yaml"))


def template_path(ref: str) -> Path:
    """Resolve `NAME` to templates/NAME.yaml, or accept a path to a YAML file."""
    looks_like_path = ref.endswith((".yaml", ".yml")) or "/" in ref
    path = Path(ref) if looks_like_path else TEMPLATES_DIR / f"{ref}.yaml"
    if not path.is_file():
        names = ", ".join(available_templates())
        if path.is_dir():
            raise UserError(f"template: {ref!r} is a directory; give a template name ({names}) or a path to a "
                            ".yaml file")
        raise UserError(f"template: no template {ref!r}; available: {names} (or a path to a .yaml file)")
    return path


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error as one line: what is wrong and where (PyYAML's own text spans several lines)."""
    if isinstance(exc, yaml.reader.ReaderError):
        return (f"not a text file: character #x{exc.character:04x} at position {exc.position} "
                "(a template is YAML text, which allows no control characters)")
    mark = getattr(exc, "problem_mark", None)
    what = ": ".join(p for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"not valid YAML: {what or ' '.join(str(exc).split())}{where}"


def load_template(ref: str) -> tuple[Template, Path]:
    path = template_path(ref)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not a text file: byte {exc.start} is not UTF-8 (a template is YAML text)") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: {_yaml_problem(exc)}") from None
    if raw is None:
        raise UserError(f"{path}: the file is empty; a template is a mapping of fields (world_id, title, premise, "
                        "time, timepoints, entities)")
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a template is a mapping of fields, got {type(raw).__name__}")
    try:
        return Template.model_validate(raw), path
    except ValidationError as exc:
        raise UserError(f"{path}: {describe(exc, 'field')}") from None
