"""Feature-usage counters: events and distinct users per (tenant, account, feature, minute).

Written like the meters (processors.metering.fold): a batch's rows and the Kafka mark of each of its
partitions go in one insert, and a redelivered batch is first cut to what the table has not
counted yet, so a SIGKILL at any moment neither loses nor doubles a count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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

# (tenant, account, feature, minute, partition)
Key = tuple[str, str, str, datetime, int]


@dataclass
class Usage:
    events: int = 0
    users: set[str] = field(default_factory=set)


def fold(features: Features, deliveries: Iterable[Delivery]) -> dict[Key, Usage]:
    """Every track event of an account that is feature usage, into its per-minute row. Events
    without an account (groupId) belong to no customer and are not counted here."""
    rows: dict[Key, Usage] = {}
    for delivery in deliveries:
        event = delivery.event
        if event.type != "track" or not event.account:
            continue
        feature = features.feature_of(event.event, event.properties)
        if feature is None:
            continue
        minute = event.timestamp.replace(second=0, microsecond=0)
        key = (event.tenant, event.account, feature, minute, delivery.partition)
        usage = rows.setdefault(key, Usage())
        usage.events += 1
        user = event.user_id or event.anonymous_id
        if user:
            usage.users.add(user)
    return rows


def to_rows(rows: dict[Key, Usage], next_offset: dict[int, int]) -> list[list[Any]]:
    return [
        [tenant, account, feature, minute, u.events, sorted(u.users), partition,
         next_offset.get(partition, 0)]
        for (tenant, account, feature, minute, partition), u in rows.items()
    ]  # fmt: skip


class FeatureUsageProcessor:
    """ClickHouse folds the staged batch (processors.features.sql_fold); `fold` above is the
    reference it is held to (tests). Given the store's `staging`, the batch is staged once."""

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
