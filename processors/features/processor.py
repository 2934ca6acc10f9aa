"""Feature-usage counters: events and distinct users per (tenant, account, feature, minute).

Written like the meters (processors.metering.fold): a batch's rows and the Kafka mark of each of its
partitions go in one insert, and a redelivered batch is first cut to what the table has not
counted yet, so a SIGKILL at any moment neither loses nor doubles a count.
"""

from __future__ import annotations

from collections.abc import Sequence

from processors.features.sql_fold import fold_statement, place_parameters
from processors.model import Delivery, offset_marks
from processors.storage.clickhouse import ClickHouse
from processors.storage.offset_marks import read_marks, uncounted
from processors.storage.staging import Staging
from schemas.activation import Features

TABLE = "feature_minutes"
COLUMNS = (
    "tenant", "account", "feature", "minute", "events", "users", "kafka_partition",
    "kafka_next_offset",
)  # fmt: skip


class FeatureUsageProcessor:
    """ClickHouse folds the staged batch (processors.features.sql_fold). Given the store's
    `staging`, the batch is staged once."""

    name = "features"

    def __init__(
        self, clickhouse: ClickHouse, features: Features, staging: Staging | None = None
    ) -> None:
        self._ch = clickhouse
        self._features = features
        self._staging = staging or Staging(clickhouse)
        self._statement = fold_statement(features, COLUMNS)

    def write(self, originals: Sequence[Delivery]) -> None:
        if not originals:
            return
        counted = read_marks(self._ch, TABLE, originals)
        todo = uncounted(originals, counted)
        if not todo:
            return
        if not self._staging.holds(originals):
            self._staging.load(originals, [False] * len(originals))
        sql, parameters = self._statement
        places = place_parameters(counted, offset_marks(originals))
        self._ch.insert_select(TABLE, sql, parameters | places, rows=len(todo))
