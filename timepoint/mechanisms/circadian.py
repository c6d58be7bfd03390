"""M14 circadian patterns: what people plausibly do at an hour, what it costs them, and what rest
gives back.

An activity is likely in its usual hours, half as likely an hour either side, and rare
otherwise; night work costs more, and so does being awake past 16 hours. Scenes that put an
entity at an implausible activity can be flagged. Those formulas are the reference's; rest is
this module's: the hours between two scenes restore energy, a night's sleep most of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from . import embodiment

if TYPE_CHECKING:
    from ..simulation import Simulation
    from ..world import Timepoint

ID = "M14"

Plausibility = Literal["invalid", "warning", "ok"]


@dataclass(frozen=True)
class Activity:
    """How likely an activity is in its usual hours, and which they are.

    A window (start, end) is the clock hours from start:00 up to end:00, so (8, 17) is the hours
    8..16 and (22, 5) wraps midnight: 22, 23, 0..4.
    """

    probability: float
    windows: tuple[tuple[int, int], ...]


# The reference runner's defaults are work and sleep; social and meals are this module's
# additions, at the reference's "illustrative" social probability .6.
DEFAULT_SCHEDULE: dict[str, Activity] = {
    "work": Activity(0.8, ((8, 17),)),
    "sleep": Activity(0.9, ((22, 5),)),
    "social": Activity(0.6, ((18, 22),)),
    "meal": Activity(0.7, ((7, 8), (12, 13), (19, 20))),
}

OFF_HOURS_PROBABILITY = 0.05
UNKNOWN_ACTIVITY_PROBABILITY = 0.1
NIGHT_START, NIGHT_END, NIGHT_PENALTY = 22, 6, 1.5
WAKE_HOUR = 6
INVALID_BELOW, WARNING_BELOW = 0.05, 0.1


def _in_window(hour: int, window: tuple[int, int]) -> bool:
    start, end = window
    return start <= hour < end if start <= end else hour >= start or hour < end


def _adjacent(hour: int, window: tuple[int, int]) -> bool:
    start, end = window
    return hour == (start - 1) % 24 or hour == end % 24


def activity_probability(activity: str, hour: float, schedule: dict[str, Activity] = DEFAULT_SCHEDULE) -> float:
    """p within the activity's hours, p/2 in the hour just before or after one of its windows,
    0.05 otherwise; 0.1 for an activity the schedule does not know. `hour` is the hour of day
    (fractions are floored, 24 wraps to 0)."""
    known = schedule.get(activity)
    if known is None:
        return UNKNOWN_ACTIVITY_PROBABILITY
    h = math.floor(hour) % 24
    if any(_in_window(h, w) for w in known.windows):
        return known.probability
    if any(_adjacent(h, w) for w in known.windows):
        return known.probability / 2
    return OFF_HOURS_PROBABILITY


def hours_awake(hour: float, wake: float = WAKE_HOUR) -> float:
    """Hours since waking at `wake` (today, or yesterday before that hour); naps are not modelled."""
    return (hour - wake) % 24


def fatigue(hours_awake: float) -> float:
    """1 up to 16 hours awake, then +0.5 for every further 16 hours (1.5 at 32)."""
    return 1 + (hours_awake - 16) * 0.5 / 16 if hours_awake > 16 else 1.0


def is_night(hour: float) -> bool:
    """22:00 up to (not including) 06:00."""
    h = hour % 24
    return h >= NIGHT_START or h < NIGHT_END


def energy_cost(base: float, hour: float, hours_awake: float) -> float:
    """base × 1.5 at night × fatigue: the same effort costs more at night and when tired."""
    return base * (NIGHT_PENALTY if is_night(hour) else 1.0) * fatigue(hours_awake)


def plausibility(probability: float) -> Plausibility:
    """Below 0.05 an activity at this hour is invalid; below 0.1 it is worth a warning."""
    if probability < INVALID_BELOW:
        return "invalid"
    if probability < WARNING_BELOW:
        return "warning"
    return "ok"


def effort_factor(at: datetime) -> float:
    """What an effort costs at this moment relative to a rested daytime hour (`energy_cost` of 1)."""
    hour = at.hour + at.minute / 60
    return energy_cost(1.0, hour, hours_awake(hour))


FULL_ENERGY = 100.0
SLEEP_TAU = 4.0
"""Hours of sleep that shrink an energy shortfall by a factor e: a night's 8 hours restore 86% of it."""
IDLE_REST = 0.25
"""An hour awake away from the scene rests a quarter as much as an hour asleep."""
REST_HORIZON = timedelta(days=3)  # past three days of rest, energy is full anyway


def night_hours(since: datetime, until: datetime) -> float:
    """Hours of [since, until) that fall in the night (22:00 up to 06:00)."""
    total = 0.0
    day = since.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    while day < until:
        start, end = day + timedelta(hours=NIGHT_START), day + timedelta(days=1, hours=NIGHT_END)
        total += max(0.0, (min(end, until) - max(start, since)).total_seconds() / 3600)
        day += timedelta(days=1)
    return total


def rest_hours(since: datetime, until: datetime) -> float:
    """Rest, in hours of sleep, between a scene at `since` and the next at `until`: the first hour
    after a scene is not rest; after it every night hour is sleep and every other hour counts a
    quarter. Back-to-back scenes rest nothing."""
    since = max(since + timedelta(hours=1), until - REST_HORIZON)
    if since >= until:
        return 0.0
    gap = (until - since).total_seconds() / 3600
    night = night_hours(since, until)
    return night + IDLE_REST * (gap - night)


def rested(energy: float, rest: float, ceiling: float = FULL_ENERGY) -> float:
    """Energy after `rest` hours of sleep: the shortfall below `ceiling` shrinks by e^(−rest/4).
    Rest never lowers energy."""
    if energy >= ceiling or rest <= 0:
        return energy
    return ceiling - (ceiling - energy) * math.exp(-rest / SLEEP_TAU)


BASE_ENERGY_COST = 5.0  # energy a timepoint costs someone present, before night and fatigue


def _last_seen(sim: Simulation, entity_id: str, tp: Timepoint) -> datetime | None:
    return next((t.timestamp for t in reversed(sim.timepoints) if entity_id in t.entities_present and t.id != tp.id),
                None)


def at_timepoint(sim: Simulation, tp: Timepoint) -> bool:
    """Rest since each one's last scene restores energy (toward what their body allows, with M8);
    then the hour costs everyone present energy — more at night, more the longer they have been
    awake — and the scene is marked if work at this hour is implausible."""
    hour = tp.timestamp.hour + tp.timestamp.minute / 60
    cost = energy_cost(BASE_ENERGY_COST, hour, hours_awake(hour))
    rests = {}
    for eid in tp.entities_present:
        e = sim.entities[eid]
        energy = e.cognitive.energy
        seen = _last_seen(sim, eid, tp)
        rest = rest_hours(seen, tp.timestamp) if seen else 0.0
        if rest > 0:
            body = embodiment.energy_factor(e.physical) if embodiment.ID in sim.enabled else 1.0
            energy = rested(energy, rest, FULL_ENERGY * body)
            rests[eid] = round(rest, 2)
        e.cognitive = e.cognitive.model_copy(update={"energy": max(0.0, energy - cost)})
    tp.metadata["circadian"] = {"hour": round(hour, 2), "energy_cost": round(cost, 2),
                                "work": plausibility(activity_probability("work", hour))}
    if rests:
        tp.metadata["circadian"]["rest_hours"] = rests
    return True
