"""Surface quality heuristics and the voice-distinctiveness metric of a dialog (reference §5.4, §12).

Both are pure functions of the turns, so SNAG-Bench's TCS, which reads the logged scores, stays
comparable with the reference.
"""

from __future__ import annotations

import itertools
import re
import statistics
from dataclasses import dataclass, field
from difflib import SequenceMatcher

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


# -- degenerate turns ---------------------------------------------------------------------
#
# A degenerate turn is not speech at all, and never becomes a training record: the gate resamples it
# once and then drops it as a gap. Each judgement compares the line with what it is given — the
# participants' names and titles, the prompt it was written from, the lines before it — not with a
# list of bad phrases.

SPEECH_VERBS = frozenset(("say", "says", "said", "asks", "asked", "replies", "replied", "speaks"))
PRONOUNS = frozenset(("i", "you", "he", "she", "it", "we", "they"))  # "He said," names no one and says nothing
COPY_RUN = 8            # a span of this many consecutive prompt words is a copy, whatever the line's length
COPY_SHARE = (6, 0.75)  # ... as is a shorter run of at least 6 words that makes up 3/4 of the line
ECHO_CLAUSE = 0.75      # a run covering this share of a direction clause (≥ 3 words), or a line this
                        # similar to one, echoes the direction
REPEAT_SIMILARITY = 0.9
_TOKEN = re.compile(r"[a-z0-9]+(?:\.[0-9]+)*")
_BRACKETED = re.compile(r"\*[^*]*\*|\([^)]*\)|\[[^\]]*\]")
_CLAUSE = re.compile(r"[.;:()!?\n]+(?:\s|$)|[;:()!?\n]")


def _tokens(text: str) -> list[str]:
    """Normalised words: lower case, apostrophes inside words dropped ("lab's" → "labs"), split at
    anything but letters and digits; decimals stay whole ("0.06")."""
    text = re.sub(r"(?<=\w)['’](?=\w)", "", text.lower())
    return _TOKEN.findall(text)


def _longest_run(line: list[str], other: list[str]) -> tuple[int, int]:
    """Length and start (in `line`) of the longest run of consecutive words `line` shares with `other`."""
    if not line or not other:
        return 0, 0
    match = SequenceMatcher(None, line, other, autojunk=False).find_longest_match(0, len(line), 0, len(other))
    return match.size, match.a


def _direction(prompt_messages: list[dict]) -> str:
    """The instructions a line must not read back: the closing paragraph of the system message, where
    the engine writes its direction (mood, turn count, move, hint)."""
    system = "\n\n".join(m["content"] for m in prompt_messages if m.get("role") == "system")
    return system.strip().rsplit("\n\n", 1)[-1]


def degenerate(line: str, prompt_messages: list[dict], earlier_turns: list[str], names: list[str]) -> str | None:
    """Why `line` is not a usable spoken turn ("kind: detail"), or None. In order:

    - ``stage_direction``: the whole line is *asterisked*, (parenthesised) or [bracketed] segments;
    - ``label``: nothing is said once punctuation, braces, quotes, speech verbs ("says") and the words
      of the participants' `names` (names and titles) are stripped ("Dale Kowalski says:", "{{Dale}}");
    - ``repeat``: the line equals an earlier line, anyone's, or is ≥ 0.9 similar to one (normalised);
    - ``instruction_echo``: the line reads back its direction (the system message's closing paragraph):
      it holds a run covering ≥ 3/4 of a direction clause of ≥ 3 words ("this is turn 4 of about 10",
      "the mood is"), or is itself ≥ 0.75 similar to a clause ("The Mood: Neutral"); the words of the
      names are left out of both, so addressing someone the direction names is not an echo;
    - ``prompt_copy``: the line shares a run of ≥ 8 consecutive words with a prompt message (system or
      user), or a run of ≥ 6 that makes up ≥ 3/4 of the line (a description or knowledge item read out).
    """
    words = _tokens(line)
    if _BRACKETED.search(line) and not _tokens(_BRACKETED.sub(" ", line)):
        return "stage_direction: is a stage direction, not speech"
    named = {w for name in names for w in _tokens(name or "")}
    if not [w for w in words if w not in named and w not in SPEECH_VERBS and w not in PRONOUNS]:
        return "label: is only a speaker label, nothing said" if words else "label: says nothing"
    joined = " ".join(words)
    for before in earlier_turns:
        other = " ".join(_tokens(before))
        if other and (other == joined
                      or SequenceMatcher(None, joined, other, autojunk=False).ratio() >= REPEAT_SIMILARITY):
            return "repeat: repeats an earlier line"
    spoken = [w for w in words if w not in named]
    for clause in _CLAUSE.split(_direction(prompt_messages)):
        said = [w for w in _tokens(clause) if w not in named]
        if len(said) < 3:
            continue
        size, start = _longest_run(spoken, said)
        similar = SequenceMatcher(None, spoken, said, autojunk=False).ratio()
        if size >= max(3, ECHO_CLAUSE * len(said)) or similar >= ECHO_CLAUSE:
            echoed = " ".join(spoken[start:start + size]) if size >= 3 else " ".join(said)
            return f'instruction_echo: reads back its direction ("{echoed}")'
    for message in prompt_messages:
        size, start = _longest_run(words, _tokens(message["content"]))
        if size >= COPY_RUN or (size >= COPY_SHARE[0] and size >= COPY_SHARE[1] * len(words)):
            return f'prompt_copy: copies {size} words of its prompt ("{" ".join(words[start:start + size])}")'
    return None
