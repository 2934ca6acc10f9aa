"""The feature-usage fold in Python: the reference the fold in ClickHouse
(processors.features.sql_fold) is held to by a property-based test
(tests/integration/test_sql_folds_clickhouse.py). The worker does not run it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from processors.model import Delivery
from processors.windows import to_minute
from schemas.activation import Features

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
        minute = to_minute(event.timestamp)
        key = (event.tenant, event.account, feature, minute, delivery.partition)
        usage = rows.setdefault(key, Usage())
        usage.events += 1
        user = event.user_id or event.anonymous_id
        if user:
            usage.users.add(user)
    return rows


def to_rows(rows: dict[Key, Usage], next_offset: dict[int, int]) -> list[list[Any]]:
    """`fold`'s rows as `feature_minutes` rows (processors.features.processor.COLUMNS)."""
    return [
        [tenant, account, feature, minute, u.events, sorted(u.users), partition,
         next_offset.get(partition, 0)]
        for (tenant, account, feature, minute, partition), u in rows.items()
    ]  # fmt: skip
