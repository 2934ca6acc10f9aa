"""The feature-usage fold in ClickHouse: one `INSERT … SELECT` over the staged batch, held to
the Python fold (processors.features.reference) by a property-based test
(tests/integration/test_sql_folds_clickhouse.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from processors.storage.staging import TABLE as STAGED
from schemas.activation import Features

# Features.feature_of: the property's value when it is a non-empty string or an integer (its
# digits), cut to 255 characters; otherwise the event's name. The engine's JSON parser types an
# integer past 64 bits as a String of its digits, which is what Python's str() writes of it.
_NAMED = """multiIf(
    JSONType(properties, {property:String}) = 'String'
        AND JSONExtractString(properties, {property:String}) != '',
    substringUTF8(JSONExtractString(properties, {property:String}), 1, 255),
    JSONType(properties, {property:String}) IN ('Int64', 'UInt64'),
    JSONExtractRaw(properties, {property:String}),
    event)"""


def fold_statement(features: Features, columns: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The statement (after `INSERT INTO feature_minutes (columns)`, in that order) and its
    fixed parameters; each batch adds its `place_parameters`."""
    where = [
        "type = 'track'",
        "account != ''",
        "event != ''",
        "kafka_offset >= mapFromArrays({partitions:Array(UInt32)}, {first:Array(UInt64)})"
        "[kafka_partition]",
    ]
    if features.exclude_events:
        where.append("event NOT IN {excluded:Array(String)}")
    if features.events:
        where.append("event IN {only:Array(String)}")
    feature = _NAMED if features.property is not None else "event"
    sql = f"""({", ".join(columns)})
SELECT tenant, account, feature, toStartOfMinute(timestamp) AS at_minute, count(),
       arraySort(groupUniqArrayIf(user, user != '')), kafka_partition,
       mapFromArrays({{partitions:Array(UInt32)}}, {{marks:Array(UInt64)}})[kafka_partition]
FROM (
    SELECT tenant, account, kafka_partition, timestamp,
           if(userId != '', userId, anonymousId) AS user, {feature} AS feature
    FROM {STAGED} WHERE {" AND ".join(where)}
)
GROUP BY tenant, account, feature, at_minute, kafka_partition"""
    parameters = {
        "property": features.property or "",
        "excluded": features.exclude_events,
        "only": features.events,
    }
    return sql, parameters


def place_parameters(counted: dict[int, int], marks: dict[int, int]) -> dict[str, Any]:
    """Per partition of the batch: the first offset not counted yet (`counted`, 0 if none) and
    the mark its rows carry (`marks`: one past the last offset folded)."""
    partitions = sorted(set(counted) | set(marks))
    return {
        "partitions": partitions,
        "first": [counted.get(p, 0) for p in partitions],
        "marks": [marks.get(p, 0) for p in partitions],
    }
