"""The writes ClickHouse does itself, held to their Python references on random batches (real
chDB): the `events` rows built from the staged batch against the rows built in Python, the
feature counters folded in SQL against `processors.features.reference.fold`, meter rows written
as JSON lines against the same rows in clickhouse-connect's Native encoding."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.features.processor import FeatureUsageProcessor
from processors.features.reference import fold, to_rows
from processors.metering import fold as meters
from processors.model import Delivery, Event, offset_marks
from processors.storage.clickhouse import ClickHouse
from processors.storage.events import COLUMNS, ClickHouseEventStore
from processors.storage.events_reference import to_row
from processors.storage.staging import Staging
from schemas.activation import Features

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
names = st.sampled_from(["export_csv", "report_created", "feature_used", "api_call", ""])
texts = st.text(max_size=6) | st.sampled_from(["é", "日本", "a\u2028b", '"q"', "x" * 300])
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([2**65, -(2**64) - 1, 2**63, -(2**63), 1e16, 2.0, 0, True])
    | texts,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(texts, inner, max_size=2),
    max_leaves=6,
)

FEATURE_VALUES = [2**63, 2**65, -(2**63), -3, "x" * 300, "日" * 256, "", "saved", True, 1.5, None]


@st.composite
def events(draw: st.DrawFn, n: int) -> Event:
    properties = draw(st.dictionaries(st.sampled_from(["feature", "n", "é"]), json_values))
    for name in ("feature", "é"):  # the values a feature's name is read from, edges first
        properties[name] = draw(st.sampled_from(FEATURE_VALUES) | json_values)
    return Event(
        contract=1,
        tenant=draw(st.sampled_from(["acme", "globex"])),
        type=draw(st.sampled_from(["track", "track", "track", "identify"])),
        message_id=f"m-{n}",
        event=draw(names),
        account=draw(st.sampled_from(["", "a-1", "a-2", "ü"])),
        user_id=draw(st.sampled_from(["", "u-1", "u-2"])),
        anonymous_id=draw(st.sampled_from(["", "anon-1"])),
        properties=properties,
        traits=draw(st.dictionaries(texts, json_values, max_size=2)),
        context=draw(st.dictionaries(texts, json_values, max_size=2)),
        timestamp=NOW + timedelta(microseconds=draw(st.integers(0, 10**9))),
        original_timestamp=draw(st.none() | st.just(NOW - timedelta(microseconds=1))),
        sent_at=draw(st.none() | st.just(NOW + timedelta(microseconds=999_999))),
        received_at=NOW + timedelta(seconds=draw(st.integers(0, 100)), microseconds=5),
    )


@st.composite
def batches(draw: st.DrawFn) -> list[Delivery]:
    size = draw(st.integers(1, 30))
    return [Delivery(draw(events(n)), draw(st.integers(0, 2)), 1000 + n) for n in range(size)]


feature_sections = st.builds(
    Features,
    property=st.sampled_from([None, "feature", "é"]),
    events=st.sampled_from([[], ["export_csv", "feature_used"]]),
    exclude_events=st.sampled_from([[], ["api_call"]]),
)


def empty(clickhouse: ClickHouse) -> None:
    """Each example starts from empty tables (hypothesis runs them all in one test's database)."""
    for table in ("events", "feature_minutes"):
        clickhouse.command(f"TRUNCATE TABLE {table}")


def rows(clickhouse: ClickHouse, sql: str) -> list[tuple[Any, ...]]:
    return sorted(clickhouse.query(sql), key=repr)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=batches())
def test_events_from_the_staged_batch_are_the_rows_python_builds(
    clickhouse: ClickHouse, batch: list[Delivery]
) -> None:
    empty(clickhouse)
    staged = ClickHouseEventStore(clickhouse, staging=Staging(clickhouse)).store(batch)
    from_sql = rows(clickhouse, f"SELECT {', '.join(COLUMNS)} FROM events")
    clickhouse.command("TRUNCATE TABLE events")
    clickhouse.insert("events", [to_row(d) for d in staged], COLUMNS)
    from_python = rows(clickhouse, f"SELECT {', '.join(COLUMNS)} FROM events")
    assert len(from_sql) == len(batch)

    def parsed(table: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        # JSON text may be written differently (1e16 or 1e+16): the same JSON values
        return [(*r[:-3], *(json.loads(text) for text in r[-3:])) for r in table]

    assert parsed(from_sql) == parsed(from_python)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=batches(), features=feature_sections, counted=st.integers(0, 1030))
def test_feature_counters_folded_in_sql_are_the_python_fold(
    clickhouse: ClickHouse, batch: list[Delivery], features: Features, counted: int
) -> None:
    """`counted`: every partition's mark, as after a crash part-way through this batch."""
    empty(clickhouse)
    marks = [[p, counted] for p in range(3)]
    clickhouse.insert(
        "feature_minutes",
        [["seed", "seed", "seed", NOW, 0, [], p, mark] for p, mark in marks],
        ["tenant", "account", "feature", "minute", "events", "users", "kafka_partition",
         "kafka_next_offset"],
    )  # fmt: skip
    staging = Staging(clickhouse)
    staging.load(batch, [True] * len(batch))
    FeatureUsageProcessor(clickhouse, features, staging).write(batch)
    columns = "tenant, account, feature, minute, events, users, kafka_partition, kafka_next_offset"
    got = rows(clickhouse, f"SELECT {columns} FROM feature_minutes WHERE tenant != 'seed'")

    todo = [d for d in batch if d.offset >= counted]
    expected = to_rows(fold(features, todo), offset_marks(todo))

    def normal(row: Sequence[Any]) -> tuple[Any, ...]:
        return (*row[:3], row[3].replace(tzinfo=None), row[4], list(row[5]), *row[6:])

    assert sorted(map(normal, got), key=repr) == sorted(map(normal, expected), key=repr)


decimals = st.decimals(
    min_value=-(10**29) + 1, max_value=10**29 - 1, places=9, allow_nan=False, allow_infinity=False
)
moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2105, 12, 31), timezones=st.just(UTC)
)


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


meter_rows = st.lists(
    st.tuples(
        st.sampled_from(["acme", "globex"]), st.sampled_from(["gb", "calls"]), texts,
        st.dictionaries(texts, texts, max_size=2), moments.map(minute_of),
        st.integers(0, 1), st.integers(0, 2**40), st.integers(0, 2**40), decimals,
        st.none() | decimals, st.none() | decimals, st.lists(texts, max_size=3, unique=True),
        st.none() | decimals, moments, texts,
        st.lists(st.tuples(moments, texts, decimals), max_size=3),
        st.lists(moments, max_size=3), st.integers(0, 4),
        st.integers(0, 5), st.integers(0, 2**40),
    ),
    min_size=1, max_size=20,
)  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=meter_rows)
def test_meter_rows_written_as_json_lines_are_the_native_rows(
    clickhouse: ClickHouse, batch: list[tuple[Any, ...]]
) -> None:
    rows = [[*r[:15], sorted(r[15]), *r[16:]] for r in batch]
    read = f"SELECT {', '.join(meters.COLUMNS)} FROM {meters.TABLE}"
    clickhouse.command(f"TRUNCATE TABLE {meters.TABLE}")
    clickhouse.insert(meters.TABLE, rows, meters.COLUMNS)
    native = sorted(clickhouse.query(read), key=repr)
    clickhouse.command(f"TRUNCATE TABLE {meters.TABLE}")
    clickhouse.insert_json(meters.TABLE, rows, meters.COLUMNS)
    assert sorted(clickhouse.query(read), key=repr) == native
    assert len(native) == len(rows)
