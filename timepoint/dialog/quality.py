"""Surface quality heuristics and the voice-distinctiveness metric of a dialog (reference §5.4, §12).

Both are pure functions of the turns, so SNAG-Bench's TCS, which reads the logged scores, stays
comparable with the reference.
"""

from __future__ import annotations

import itertools
import re
import statistics
from dataclasses import dataclass, field

from ..world import Turn

HEDGING_OPENERS = (
    "well,", "well ", "i think", "i believe", "i understand", "i hear you", "i appreciate", "i see",
    "that's a great point", "great point", "good point", "to be honest", "honestly", "absolutely",
    "of course", "you're right", "fair point", "with all due respect", "as an ai", "certainly",
)
CONSENSUS_PHRASES = (
    "i agree", "agreed", "you're right", "you are right", "exactly", "absolutely", "good point",
    "great point", "same page", "makes sense", "fair enough", "well said", "couldn't agree",
)
_WORD = re.compile(r"[a-z][a-z'-]*")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def opens_with_hedge(text: str) -> bool:
    return text.strip().lower().startswith(HEDGING_OPENERS)


def _cv(values: list[float]) -> float:
    mean = statistics.fmean(values) if values else 0.0
    return statistics.pstdev(values) / mean if len(values) > 1 and mean else 0.0


def _mean_lengths(turns: list[Turn]) -> dict[str, float]:
    by_speaker: dict[str, list[int]] = {}
    for t in turns:
        by_speaker.setdefault(t.speaker, []).append(len(_words(t.content)))
    return {s: statistics.fmean(n) for s, n in by_speaker.items()}


def is_strict_round_robin(turns: list[Turn]) -> bool:
    """Speakers repeat one fixed cycle. Two speakers alternate by nature, so it needs three or more."""
    order = list(dict.fromkeys(t.speaker for t in turns))
    if len(turns) < 4 or len(order) < 3:
        return False
    return all(t.speaker == order[i % len(order)] for i, t in enumerate(turns))


@dataclass
class SurfaceQuality:
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return round(sum(self.checks.values()) / len(self.checks), 4)

    @property
    def passed(self) -> bool:
        return self.score >= 0.6

    @property
    def failed(self) -> list[str]:
        return [name for name, ok in self.checks.items() if not ok]


def surface_quality(turns: list[Turn]) -> SurfaceQuality:
    """Five checks: hedged openers, strict round-robin, turn-length variation, consensus, speaker spread."""
    lengths = [len(_words(t.content)) for t in turns]
    means = _mean_lengths(turns)
    consensus = sum(any(p in t.content.lower() for p in CONSENSUS_PHRASES) for t in turns)
    return SurfaceQuality({
        "hedging_openers": sum(opens_with_hedge(t.content) for t in turns) <= 1,
        "not_round_robin": not is_strict_round_robin(turns),
        "length_variation": _cv(lengths) > 0.3,
        "low_consensus": (consensus / len(turns) if turns else 0.0) < 0.4,
        "speaker_length_spread": (max(means.values()) - min(means.values()) if means else 0.0) > 8,
    })


def voice_distinctiveness(turns: list[Turn]) -> float:
    """Mean of: 1 − hedged-opener share; length spread / 8; mean pairwise vocabulary Jaccard
    distance (words over 3 letters); CV of per-speaker turn counts / 0.3 — each capped at 1."""
    if not turns:
        return 0.0
    hedged = sum(opens_with_hedge(t.content) for t in turns) / len(turns)
    means = _mean_lengths(turns)
    spread = max(means.values()) - min(means.values())
    vocab: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for t in turns:
        vocab.setdefault(t.speaker, set()).update(w for w in _words(t.content) if len(w) > 3)
        counts[t.speaker] = counts.get(t.speaker, 0) + 1
    distances = [1 - len(a & b) / len(a | b) if a | b else 0.0 for a, b in itertools.combinations(vocab.values(), 2)]
    parts = [1 - hedged, min(1.0, spread / 8), statistics.fmean(distances) if distances else 0.0,
             min(1.0, _cv(list(counts.values())) / 0.3)]
    return round(statistics.fmean(parts), 4)
