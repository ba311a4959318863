"""Reading this process's Prometheus metrics in tests."""

from __future__ import annotations

from prometheus_client import REGISTRY


def metric_value(name: str, **labels: str) -> float:
    """A sample of the process's registry (``name`` with its suffix: ``_total``, ``_sum``,
    ``_count``), 0 while nothing was observed for those labels."""
    return REGISTRY.get_sample_value(name, labels) or 0.0
