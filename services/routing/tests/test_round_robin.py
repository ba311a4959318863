"""Weighted round robin: fairness over 10,000 assignments, determinism, and the policy for
reps who join or come back (neither flooded nor starved)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.routing.domain.round_robin import Rotation, pick, stride

# The stated tolerance (README): at every point of the sequence, each rep's count is within
# this many leads of its exact weighted share.
TOLERANCE = 1.0


def run(
    weights: dict[str, int], count: int, rotation: Rotation | None = None
) -> tuple[list[str], Rotation]:
    rotation = rotation or Rotation()
    chosen = []
    for _ in range(count):
        result = pick(rotation, weights)
        rotation = result.rotation
        chosen.append(result.rep_id)
    return chosen, rotation


def worst_deviation(sequence: list[str], weights: dict[str, int]) -> float:
    total = sum(weights.values())
    counts: Counter[str] = Counter()
    worst = 0.0
    for index, rep in enumerate(sequence, start=1):
        counts[rep] += 1
        for name, weight in weights.items():
            worst = max(worst, abs(counts[name] - index * weight / total))
    return worst


@pytest.mark.parametrize(
    "weights",
    [
        {"ana": 1, "ben": 2, "cy": 3, "dee": 4},
        {"ana": 7, "ben": 3, "cy": 1, "dee": 1, "eve": 13},
        {f"rep{i}": 1 for i in range(9)},
        {"junior": 1, "senior": 1000},
    ],
)
def test_ten_thousand_assignments_follow_the_weights_within_the_tolerance(
    weights: dict[str, int],
) -> None:
    sequence, _ = run(weights, 10_000)
    assert worst_deviation(sequence, weights) <= TOLERANCE
    counts = Counter(sequence)
    total = sum(weights.values())
    for rep, weight in weights.items():
        assert abs(counts[rep] - 10_000 * weight / total) <= TOLERANCE


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=8))
def test_any_weights_stay_within_the_tolerance(weight_list: list[int]) -> None:
    weights = {f"rep{i}": weight for i, weight in enumerate(weight_list)}
    sequence, _ = run(weights, 1_000)
    assert worst_deviation(sequence, weights) <= TOLERANCE


def test_equal_weights_take_turns_in_rep_id_order() -> None:
    sequence, _ = run({"cy": 1, "ana": 1, "ben": 1}, 6)
    assert sequence == ["ana", "ben", "cy", "ana", "ben", "cy"]


def test_the_state_alone_decides_so_a_restart_continues_the_same_sequence() -> None:
    weights = {"ana": 2, "ben": 3, "cy": 5}
    continuous, _ = run(weights, 500)
    first, stored = run(weights, 237)
    # As if the process stopped and another instance read the stored state back.
    reloaded = Rotation(stored.virtual_time, dict(stored.passes))
    second, _ = run(weights, 263, reloaded)
    assert first + second == continuous


def test_a_rep_back_from_out_of_office_is_neither_flooded_nor_starved() -> None:
    everyone = {"ana": 1, "ben": 1, "cy": 1}
    _, rotation = run(everyone, 30)
    # cy is away while 3,000 leads go to the others.
    _, rotation = run({"ana": 1, "ben": 1}, 3_000, rotation)
    after, _ = run(everyone, 300, rotation)
    assert "cy" in after[:3]  # not starved: a turn right away
    assert max(len(list(group)) for group in _runs(after, "cy")) == 1  # never twice in a row
    assert worst_deviation(after, everyone) <= TOLERANCE  # a fair share from the return on
    assert Counter(after)["cy"] == 100


def test_a_new_rep_starts_at_the_current_turn() -> None:
    _, rotation = run({"ana": 1, "ben": 2}, 5_000)
    team = {"ana": 1, "ben": 2, "newbie": 1}
    after, _ = run(team, 400, rotation)
    assert "newbie" in after[:4]
    assert worst_deviation(after, team) <= TOLERANCE
    assert Counter(after)["newbie"] == 100


def test_a_rep_at_capacity_does_not_catch_up_afterwards() -> None:
    _, rotation = run({"ana": 1, "ben": 1}, 10)
    _, rotation = run({"ana": 1}, 50, rotation)  # ben at capacity for 50 leads
    after, _ = run({"ana": 1, "ben": 1}, 100, rotation)
    assert Counter(after) == {"ana": 50, "ben": 50}
    assert worst_deviation(after, {"ana": 1, "ben": 1}) <= 1


def test_a_rep_who_leaves_the_rotation_is_forgotten_and_one_passed_over_keeps_his_place() -> None:
    _, rotation = run({"ana": 1, "ben": 1, "cy": 1}, 7)
    away = pick(rotation, {"ana": 1, "ben": 1})
    assert "cy" not in away.rotation.passes
    passed_over = pick(rotation, {"ana": 1, "ben": 1}, standing=["cy"])
    assert passed_over.rotation.passes["cy"] == rotation.passes["cy"]


def test_ties_and_joins_are_reported() -> None:
    first = pick(Rotation(), {"ana": 1})
    assert first.rejoined
    assert not pick(first.rotation, {"ana": 1}).rejoined


def test_weights_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="weight"):
        stride(0)
    with pytest.raises(ValueError, match="nobody"):
        pick(Rotation(), {})


def _runs(sequence: list[str], rep: str) -> list[list[str]]:
    groups: list[list[str]] = []
    current: list[str] = []
    for item in sequence:
        if item == rep:
            current.append(item)
        elif current:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups or [[]]
