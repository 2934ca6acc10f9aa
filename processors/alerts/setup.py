"""The alert watch of a worker: its topic, its ends, and its recovery, from the settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from processors.alerts.recovery import load_partitions
from processors.alerts.sinks import ClickHouseAlertStore, KafkaAlertSink
from processors.alerts.watch import AlertWatch, watched_meters
from processors.storage.clickhouse import ClickHouse
from runtime.topics import ensure_topics_with_config, when_kafka_answers
from schemas.config import ProductConfig
from schemas.settings import Settings

# Compacted by tenant:account (an account's last record says where it stands), but no record is
# compacted away before a week has passed: a webhook sender that was down for days still reads
# every one.
ALERTS_TOPIC_CONFIG = {"min.compaction.lag.ms": str(7 * 24 * 3600 * 1000)}


def add_alerts(
    settings: Settings,
    clickhouse: ClickHouse,
    product: ProductConfig,
    assigned: Callable[[], set[int]],
) -> AlertWatch | None:
    """None when no plan has a threshold or tier: nothing to watch."""
    meters = watched_meters(product)
    if not meters:
        return None
    when_kafka_answers(
        settings.kafka_bootstrap,
        "creating the alerts topic",
        lambda: ensure_topics_with_config(
            settings.kafka_bootstrap,
            settings.alerts_topic,
            settings.topic_partitions,
            True,
            ALERTS_TOPIC_CONFIG,
        ),
    )
    return AlertWatch(
        product,
        KafkaAlertSink(settings.kafka_bootstrap, settings.alerts_topic),
        ClickHouseAlertStore(clickhouse),
        load=lambda partitions: load_partitions(
            clickhouse, product, meters, partitions, datetime.now(UTC)
        ),
        assigned=assigned,
    )
