"""Domain objects: entities with quantitative state, relationships, knowledge, time and dialog.

Two views of an entity's state are kept in step (reference §2):
- the TTM tensor, all in [0, 1]-ish units, which is what gets compressed and exported;
- the cognitive state in human units (valence −1..1, energy 0..100, patience 0..100).
`cognitive_from_tensor` and `tensor_with_cognitive` convert between them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from dateutil.relativedelta import relativedelta
from pydantic import BaseModel, Field

from .adprs import Envelope
from .numeric import clamp

# How much detail an entity carries (M1), lowest to highest: elevation ranks levels in this order.
Resolution = Literal["tensor_only", "scene", "graph", "dialog", "trained", "full_detail"]

# The behaviour vector is openness, conscientiousness, extraversion, agreeableness, neuroticism,
# risk tolerance, decision speed, reserve; these trait words push a dimension high or low.
_TRAIT_PUSHES: dict[str, dict[int, float]] = {
    "creative": {0: 0.85}, "intellectual": {0: 0.8}, "curious": {0: 0.8}, "visionary": {0: 0.85},
    "traditional": {0: 0.2}, "practical": {0: 0.3},
    "organized": {1: 0.85}, "disciplined": {1: 0.85}, "precise": {1: 0.8}, "meticulous": {1: 0.85},
    "analytical": {1: 0.75, 0: 0.65}, "technical": {1: 0.75}, "data-driven": {1: 0.75},
    "casual": {1: 0.25}, "relaxed": {1: 0.25, 4: 0.25}, "impulsive": {1: 0.2, 6: 0.85},
    "outgoing": {2: 0.85, 7: 0.15}, "warm": {2: 0.7, 3: 0.8}, "charismatic": {2: 0.85},
    "commanding": {2: 0.75, 6: 0.75}, "reserved": {2: 0.2, 7: 0.85}, "quiet": {2: 0.2, 7: 0.8},
    "empathetic": {3: 0.85}, "diplomatic": {3: 0.8}, "agreeable": {3: 0.8},
    "competitive": {3: 0.25}, "cold": {3: 0.15, 2: 0.35}, "stubborn": {3: 0.2},
    "ambitious": {3: 0.35, 5: 0.7},
    "anxious": {4: 0.85}, "intense": {4: 0.75}, "frustrated": {4: 0.7}, "nervous": {4: 0.8},
    "stoic": {4: 0.15}, "calm": {4: 0.2},
    "risk-tolerant": {5: 0.85}, "bold": {5: 0.8}, "cautious": {5: 0.2}, "conflict-averse": {5: 0.3, 3: 0.7},
    "decisive": {6: 0.85}, "deliberate": {6: 0.25}, "pragmatic": {0: 0.4, 6: 0.7},
}


def behavior_from_traits(traits: list[str]) -> list[float]:
    """Map trait words onto the 8 behaviour dimensions; unmentioned dimensions stay at 0.5."""
    pushes: dict[int, list[float]] = {}
    for trait in traits:
        for dim, value in _TRAIT_PUSHES.get(trait.lower().strip(), {}).items():
            pushes.setdefault(dim, []).append(value)
    return [round(sum(pushes[d]) / len(pushes[d]), 4) if d in pushes else 0.5 for d in range(8)]


class TTMTensor(BaseModel):
    """Context (8), biology (4) and behaviour (8) vectors — reference §2."""

    context: list[float] = Field(min_length=8, max_length=8)
    biology: list[float] = Field(min_length=4, max_length=4)
    behavior: list[float] = Field(min_length=8, max_length=8)


class CognitiveState(BaseModel):
    valence: float = Field(0.0, ge=-1, le=1)
    arousal: float = Field(0.3, ge=0, le=1)
    energy: float = Field(100.0, ge=0)
    confidence: float = Field(0.8, ge=0, le=1)
    patience: float = Field(50.0, ge=0)
    risk: float = Field(0.5, ge=0, le=1)
    social: float = Field(0.8, ge=0, le=1)


class PhysicalState(BaseModel):
    age: float = 35.0
    health: float = Field(1.0, ge=0, le=1)
    pain: float = Field(0.0, ge=0, le=1)
    fever: float = 36.5
    mobility: float = Field(1.0, ge=0, le=1)
    stamina: float = Field(1.0, ge=0, le=1)


def baseline_tensor(entity_type: str, physical: PhysicalState, traits: list[str]) -> TTMTensor:
    """The deterministic baseline tensor (no model call)."""
    if entity_type == "human":
        biology = [round(physical.age / 100, 4), physical.health, round(1 - physical.pain, 4), physical.stamina]
    else:
        biology = [0.5, 0.5, 0.5, 0.5]
    return TTMTensor(context=[0.0, 0.5, 0.3, 1.0, 0.5, 0.5, 0.5, 0.5], biology=biology,
                     behavior=behavior_from_traits(traits))


def cognitive_from_tensor(t: TTMTensor) -> CognitiveState:
    """TTM → cognitive units: valence ttm·2−1, energy ttm·100, patience ttm·100."""
    c = t.context
    return CognitiveState(
        valence=clamp(c[1] * 2 - 1, -1, 1), arousal=clamp(c[2], 0, 1), energy=max(0.0, c[3] * 100),
        confidence=clamp(c[4], 0, 1), patience=max(0.0, c[5] * 100), risk=clamp(c[6], 0, 1),
        social=clamp(c[7], 0, 1),
    )


def tensor_with_cognitive(t: TTMTensor, cog: CognitiveState, knowledge_count: int) -> TTMTensor:
    """Cognitive → TTM, clamped to [0, 1]; ctx[0] is the knowledge level min(n/10, 1)."""
    context = [
        min(knowledge_count / 10, 1.0),
        (cog.valence + 1) / 2, cog.arousal, cog.energy / 100, cog.confidence,
        cog.patience / 100, cog.risk, cog.social,
    ]
    return t.model_copy(update={"context": [round(clamp(v, 0, 1), 4) for v in context]})


class Memory(BaseModel):
    summary: str
    emotional_residue: str
    salience: float
    timepoint_id: str


class Topic(BaseModel):
    """Something a character keeps coming back to (M15 rumination)."""

    topic: str
    intensity: float = Field(ge=0, le=1)
    recurrence: int = 1


class Unspoken(BaseModel):
    """Something a character holds back; it presses harder each dialog it stays unsaid."""

    content: str
    urgency: float = Field(0.3, ge=0, le=1)
    first_formed: str


class Attempt(BaseModel):
    """One tactic a character tried on someone in a dialog, how it landed and why, as the dialog's
    aftermath judged it (M13 arc ledger)."""

    timepoint_id: str
    tactic: str
    target: str
    outcome: str
    reason: str = ""


class Mind(BaseModel):
    """What lives behind the words: memory, preoccupations, what is held back, the arc so far."""

    memory: list[Memory] = []
    rumination: list[Topic] = []
    unspoken: list[Unspoken] = []
    suppressed: list[str] = []
    attempts: list[Attempt] = []
    trust_ledger: dict[str, float] = {}


class Entity(BaseModel):
    id: str
    name: str
    type: str = "human"
    role: str = "primary"
    title: str = ""
    description: str = ""
    traits: list[str] = []
    goals: list[str] = []
    voice_guide: dict = {}
    speech_examples: list[str] = []
    resolution: Resolution = "dialog"
    adprs: Envelope | None = None
    mind: Mind = Mind()
    tensor: TTMTensor
    cognitive: CognitiveState = CognitiveState()
    physical: PhysicalState = PhysicalState()


class Relationship(BaseModel):
    a: str
    b: str
    type: str = "neutral"
    trust: float = Field(0.5, ge=0, le=1)
    alignment: float = Field(0.0, ge=-1, le=1)
    interactions: int = 0


ExposureType = Literal["initial", "experienced", "told", "learned", "expectation", "concern"]


class ExposureEvent(BaseModel):
    """How an entity came to know something: from whom, when, how sure."""

    entity_id: str
    event_type: ExposureType
    information: str
    source: str
    timestamp: datetime
    confidence: float = Field(1.0, ge=0, le=1)
    timepoint_id: str


class KnowledgeItem(BaseModel):
    """A fact said in a dialog, with who said it and to whom."""

    content: str
    speaker: str
    listeners: list[str]
    confidence: float = Field(0.9, ge=0, le=1)


class Timepoint(BaseModel):
    id: str
    index: int
    timestamp: datetime
    event: str
    entities_present: list[str]
    causal_parent: str | None = None
    causal_link: str = ""
    importance: float = Field(0.5, ge=0, le=1)
    timeline_id: str = "main"
    metadata: dict = Field({}, description="What the mode knows of this moment: act, tension, cycle, branch...")


class Turn(BaseModel):
    index: int
    speaker: str
    content: str
    emotional_tone: str = "neutral"
    knowledge_references: list[str] = []
    dialog_move: str = "direct_statement"
    move_target: str | None = None
    params: dict = {}


class Dialog(BaseModel):
    id: str
    timepoint_id: str
    participants: list[str]
    turns: list[Turn] = []
    summary: str = ""
    ending: str = "natural_pause"
    mood: str = "neutral"
    quality_score: float | None = None
    quality_passed: bool | None = None
    quality_checks: dict = {}
    semantic: dict = {}
    voice_distinctiveness: float | None = None


def advance(start: datetime, unit: str, steps: int) -> datetime:
    """`start` moved on by `steps` time units. Months and up count from `start` on the calendar: the
    start's day is kept, or the month's last day where the month is shorter (31 Jan + 1 month = 28/29 Feb,
    + 2 months = 31 Mar)."""
    months = {"month": 1, "quarter": 3, "year": 12}.get(unit)
    if months:
        return start + relativedelta(months=months * steps)
    seconds = {"week": 604800, "day": 86400, "hour": 3600, "minute": 60, "second": 1}[unit]
    return start + timedelta(seconds=seconds * steps)


def jaccard(a: set, b: set) -> float:
    """Overlap of two sets; two empty sets are alike."""
    return len(a & b) / len(a | b) if a or b else 1.0


def alignment(known_a: set[str], known_b: set[str]) -> float:
    """M13 belief alignment: shared knowledge over all knowledge of the pair."""
    union = known_a | known_b
    return round(len(known_a & known_b) / len(union), 4) if union else 0.0


# Declared relationship types and the trust they start from (reference M1 edge weights).
RELATIONSHIP_TRUST = {
    "ally": 0.9, "friend": 0.8, "colleague": 0.7, "acquaintance": 0.5, "neutral": 0.3, "rival": 0.2,
    "enemy": 0.1, "mentor": 0.85, "student": 0.75, "family": 0.95, "other": 0.5,
}


def causal_ancestry(timepoints: dict[str, Timepoint], tp: Timepoint) -> set[str]:
    """`tp` and all its causal ancestors, following `causal_parent` (cycles cannot loop)."""
    seen: set[str] = set()
    current: Timepoint | None = tp
    while current is not None and current.id not in seen:
        seen.add(current.id)
        current = timepoints.get(current.causal_parent) if current.causal_parent else None
    return seen


def visible_to(events: list[ExposureEvent], ancestry: set[str]) -> list[ExposureEvent]:
    """What a character may draw on at a timepoint: knowledge from before the run, or from the
    timepoint itself and its causal ancestors. In PORTAL and BRANCHING runs, later-generated
    timepoints can be earlier in the story or on another branch: they are not visible."""
    return [e for e in events if e.timepoint_id.startswith("pre_") or e.timepoint_id in ancestry]
