"""Reading a Prometheus registry in tests: one sample, or a counter summed over its labels."""

from __future__ import annotations

from prometheus_client import CollectorRegistry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def total(registry: CollectorRegistry, name: str) -> float:
    """A counter summed over all its label values."""
    return sum(
        s.value for f in registry.collect() for s in f.samples if s.name == name
    )  # fmt: skip
