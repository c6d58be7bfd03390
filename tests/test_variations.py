"""Variations: every strategy is reproducible from the seed and the index, moves only what it says,
and stays within its documented ranges; a sweep over the index gives distinct casts."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from timepoint.config import VariationsConfig
from timepoint.scenario import load_template
from timepoint.variations import STRATEGIES, vary
from timepoint.world import behavior_from_traits

BOARD = load_template("board_meeting")[0]


def varied(strategy: str, index: int, seed: int = 42, magnitude: float = 0.3):
    return vary(BOARD, VariationsConfig(strategy=strategy, index=index, magnitude=magnitude), seed)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(STRATEGIES)), st.integers(0, 1000), st.integers(0, 10 ** 6))
def test_each_strategy_is_reproducible_and_distinct_per_index(strategy, index, seed):
    first, again = varied(strategy, index, seed), varied(strategy, index, seed)
    assert first == again
    assert first.world_id == f"board_meeting_var_{index}"
    assert first.model_dump(exclude={"world_id"}) != varied(strategy, index + 1, seed).model_dump(exclude={"world_id"})


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 1000), st.floats(0.05, 1))
def test_personalities_stay_near_the_traits(index, m):
    for before, after in zip(BOARD.entities, varied("personalities", index, magnitude=m).entities):
        base = behavior_from_traits(before.personality_traits)
        assert all(0 <= v <= 1 and abs(v - b) <= m + 1e-4 for v, b in zip(after.temperament.values(), base))
        assert after.personality_traits == before.personality_traits and after.start is None


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 1000), st.floats(0.05, 1))
def test_knowledge_is_a_nonempty_subset(index, m):
    for before, after in zip(BOARD.entities, varied("knowledge", index, magnitude=m).entities):
        assert after.initial_knowledge and set(after.initial_knowledge) <= set(before.initial_knowledge)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 1000), st.floats(0.05, 1))
def test_relationships_cover_every_pair_within_range(index, m):
    rels = varied("relationships", index, magnitude=m).relationships
    n = len(BOARD.entities)
    assert len(rels) == n * (n - 1) // 2
    assert all(max(0, 0.5 - m) - 1e-4 <= r.trust <= min(1, 0.5 + m) + 1e-4 for r in rels)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 1000), st.floats(0.05, 1))
def test_outcomes_and_starting_conditions_stay_in_range(index, m):
    for e in varied("outcomes", index, magnitude=m).entities:
        s = e.start
        assert abs(s.risk - 0.5) <= m + 1e-4 and abs(s.confidence - 0.8) <= m / 2 + 1e-4
        assert abs(s.patience - 50) <= 50 * m + 1e-4 and 0 <= s.social <= 1
    for e in varied("starting_conditions", index, magnitude=m).entities:
        assert 20 <= e.start.energy <= 100 and abs(e.start.valence) <= m + 1e-4
        assert e.body.health >= 1 - m / 2 - 1e-4
        assert e.body.pain <= 0.3 * m + 1e-4


def test_a_sweep_over_the_index_gives_distinct_reproducible_casts(timepoint, tmp_path):
    sweep = tmp_path / "sweep"
    result = timepoint("-m", "model=test", "template=board_meeting", "variations=starting_conditions",
                       "variations.index=0,1", f"hydra.sweep.dir={sweep}")
    assert result.code == 0, result.stderr
    again = timepoint("model=test", "template=board_meeting", "variations=starting_conditions", "variations.index=1")

    def opening(run_dir):
        from timepoint.store import RunStore
        store = RunStore(run_dir / "run.db")
        first = min(r["seq"] for r in store.rows("entity_states"))
        return {(r["entity_id"], json.loads(r["physical"])["pain"]) for r in store.rows("entity_states")
                if r["seq"] == first}

    assert opening(sweep / "0") != opening(sweep / "1")
    assert opening(sweep / "1") == opening(again.run_dir)
    assert json.loads((sweep / "1" / "run.json").read_text())["status"] == "completed"
