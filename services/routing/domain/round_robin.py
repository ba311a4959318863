"""Weighted round robin inside a team: fair, deterministic, and kind to returning reps.

The policy is stride scheduling with virtual time, in integers so that every instance of
the service computes the same answer from the same stored state:

* Each rep has a *pass* (a virtual time) and a *stride* of ``STRIDE_UNIT // weight``.
* Among the reps who can take a lead now, the one whose ``pass + stride`` is lowest gets it
  (ties go to the lowest rep id), and their pass moves to ``pass + stride``.
* The team keeps a *virtual time*: after each pick, the lowest pass among the reps who could
  take that lead. It never goes back.
* A rep with no pass yet (new in the team) or a pass behind the virtual time (back from
  out-of-office, inactive for a while, or at capacity while the others took leads) starts
  at the virtual time. So they are not flooded with the leads they "missed", and they are
  not starved either: they compete from the front of the line, from the next lead on.
* A rep who was always able to take leads is never lifted: their pass is never behind the
  virtual time. Over any stretch where the same reps are available, each gets leads in
  proportion to their weight, off by at most about one lead.

The state is small (one integer per team, one per rep) and lives in the database; callers
hold a lock on the team while they pick and store the new state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# Least common multiple of 1..20: strides are exact for weights up to 20, and off by less
# than one part in ten million beyond that.
STRIDE_UNIT = 232_792_560
MAX_WEIGHT = 1_000


def stride(weight: int) -> int:
    if not 1 <= weight <= MAX_WEIGHT:
        raise ValueError(f"weight must be between 1 and {MAX_WEIGHT}")
    return STRIDE_UNIT // weight


@dataclass(frozen=True)
class Rotation:
    """A team's round-robin state: its virtual time and each rep's pass."""

    virtual_time: int = 0
    passes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Pick:
    rep_id: str
    rotation: Rotation
    # The rep started from the team's virtual time (new, or back after a while away).
    rejoined: bool


def pick(rotation: Rotation, weights: Mapping[str, int]) -> Pick:
    """Choose among the reps who can take the lead now (``weights``: rep id to weight)."""
    if not weights:
        raise ValueError("nobody to pick from")
    floor = rotation.virtual_time
    starts = {rep: max(rotation.passes.get(rep, floor), floor) for rep in weights}
    chosen = min(weights, key=lambda rep: (starts[rep] + stride(weights[rep]), rep))
    rejoined = rotation.passes.get(chosen, floor - 1) < floor
    passes = dict(rotation.passes)
    passes[chosen] = starts[chosen] + stride(weights[chosen])
    for rep, start in starts.items():
        if rep != chosen:
            passes[rep] = start  # lifted to the virtual time if they were behind it
    virtual_time = min(passes[rep] for rep in weights)
    return Pick(
        rep_id=chosen,
        rotation=Rotation(virtual_time=virtual_time, passes=MappingProxyType(passes)),
        rejoined=rejoined,
    )
