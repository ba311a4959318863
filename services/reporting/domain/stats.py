"""Order statistics over plain numbers."""

from __future__ import annotations

from collections.abc import Iterable


def percentile(values: Iterable[float], fraction: float) -> float | None:
    """The ``fraction`` quantile (0..1) by linear interpolation between closest ranks.

    The same definition as numpy's default: rank ``(n - 1) * fraction`` in the sorted values,
    interpolated between its two neighbours. None when there is no value.
    """
    if not 0 <= fraction <= 1:
        raise ValueError("fraction must be between 0 and 1")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * fraction
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def median(values: Iterable[float]) -> float | None:
    """The middle value; the mean of the two middle ones for an even count."""
    return percentile(values, 0.5)


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is zero."""
    return numerator / denominator if denominator else None
