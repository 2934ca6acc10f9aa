"""Adding activation detection to a worker: its topic, engine, ClickHouse store and tables."""

from __future__ import annotations

from collections.abc import Callable

import faust

from processors.activation.engine import ActivationEngine
from processors.activation.store import ClickHouseActivationStore
from processors.activation.tables import ActivationConfig, ActivationTables
from processors.storage.clickhouse import ClickHouse
from runtime.topics import ensure_copartitioned, when_kafka_answers
from schemas.config import ProductConfig
from schemas.settings import Settings


def add_activation(
    app: faust.App,
    settings: Settings,
    clickhouse: ClickHouse,
    product: ProductConfig,
    on_emitted: Callable[[str, int], None] | None = None,
) -> ActivationTables | None:
    """The activation tables, declared on `app`, when the config has rules."""
    if not product.activation.rules:
        return None
    # faust restores a table partition by partition of its source topic: the outcomes' topic
    # (the `activation_outcomes` table's changelog) must be partitioned like `events`.
    partitions = when_kafka_answers(
        settings.kafka_bootstrap,
        "creating the activations topic",
        lambda: ensure_copartitioned(
            settings.kafka_bootstrap,
            settings.activations_topic,
            settings.events_topic,
            compacted=True,
        ),
    )
    config = ActivationConfig(
        bootstrap=settings.kafka_bootstrap,
        events_topic=settings.events_topic,
        activations_topic=settings.activations_topic,
        partitions=partitions,
    )
    engine = ActivationEngine(product.activation)
    store = ClickHouseActivationStore(clickhouse)
    return ActivationTables(app, config, engine, store, on_emitted)
