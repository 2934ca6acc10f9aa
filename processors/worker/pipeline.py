"""The event store and the processors a batch runs through, wired once for the worker and the
bench's processing without faust."""

from __future__ import annotations

from datetime import timedelta

from processors.features.processor import FeatureUsageProcessor
from processors.metering.processor import FoldWatcher, MeteringProcessor
from processors.storage.clickhouse import ClickHouse
from processors.storage.events import DEDUP_HORIZON, ClickHouseEventStore
from processors.storage.staging import Staging
from processors.worker.batch import Processor
from schemas.config import ProductConfig


def build_pipeline(
    clickhouse: ClickHouse,
    product: ProductConfig,
    horizon: timedelta = DEDUP_HORIZON,
    alerts: FoldWatcher | None = None,
) -> tuple[ClickHouseEventStore, list[Processor]]:
    """The raw event store (dedup over `horizon`), then metering (with the alert watch on its
    rows, when there is one) and feature usage, sharing one staging table."""
    staging = Staging(clickhouse)
    store = ClickHouseEventStore(clickhouse, horizon, staging=staging)
    processors: list[Processor] = [
        MeteringProcessor(clickhouse, product, alerts),
        FeatureUsageProcessor(clickhouse, product.features, staging),
    ]
    return store, processors
