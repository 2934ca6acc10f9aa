"""Adding activation detection to a worker: its topic, engine, ClickHouse store and agent."""

from __future__ import annotations

from collections.abc import Callable

import faust

from ingest.topics import ensure_copartitioned
from processors.activation.agent import ActivationAgentConfig, install_activation_agent
from processors.activation.engine import ActivationEngine
from processors.activation.store import ClickHouseActivationStore
from processors.storage.clickhouse import ClickHouse
from schemas.config import ProductConfig
from schemas.settings import Settings


def add_activation(
    app: faust.App,
    settings: Settings,
    clickhouse: ClickHouse,
    product: ProductConfig,
    on_emitted: Callable[[str, int], None] | None = None,
) -> bool:
    """Install the activation agent when the config has rules; True if it did."""
    if not product.activation.rules:
        return False
    # faust restores a table partition by partition of its source topic: the outcomes' topic
    # (the `activation_outcomes` table's changelog) must be partitioned like `events`.
    partitions = ensure_copartitioned(
        settings.kafka_bootstrap, settings.activations_topic, settings.events_topic, compacted=True
    )
    config = ActivationAgentConfig(
        bootstrap=settings.kafka_bootstrap,
        events_topic=settings.events_topic,
        activations_topic=settings.activations_topic,
        partitions=partitions,
        batch_size=settings.sink_batch_size,
        batch_seconds=settings.sink_batch_seconds,
    )
    engine = ActivationEngine(product.activation)
    install_activation_agent(app, config, engine, ClickHouseActivationStore(clickhouse), on_emitted)
    return True
