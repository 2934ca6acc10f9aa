"""Every process's Prometheus metrics follow the same naming conventions."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ingest.metrics import CollectorMetrics
from processors.worker.metrics import WorkerMetrics


@pytest.mark.parametrize("build", [CollectorMetrics, WorkerMetrics])
def test_names_follow_the_conventions(build: Any) -> None:
    """usage_stream_ prefix, counters end in _total, times in seconds and sizes in bytes."""
    registry = CollectorRegistry()
    build(registry)
    text = generate_latest(registry).decode()
    ours = [f for f in text_string_to_metric_families(text) if f.name.startswith("usage_stream_")]
    assert len(ours) >= 8
    for family in ours:
        assert "millisecond" not in family.name and "_ms" not in family.name, family.name
        if family.type == "counter":
            assert f"# TYPE {family.name}_total counter" in text, family.name
        elif family.type == "histogram":
            assert family.name.endswith(("_seconds", "_bytes")), family.name
        else:
            assert family.type == "gauge", family.name
            assert family.name.endswith(("_messages", "_seconds")), family.name
