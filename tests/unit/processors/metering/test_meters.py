"""Meter definitions, the config file, billing periods and the per-minute fold, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.metering.calendar import FinalAt, final_at, period_end, period_start
from processors.metering.fold import Partial, _group_value, fold, numeric
from processors.model import Delivery
from schemas import EnrichedEvent
from schemas.config import (
    EXAMPLE_CONFIG,
    Billing,
    ConfigError,
    ProductConfig,
    load_config,
    parse_config,
)


def test_the_example_config_loads_complete() -> None:
    config = load_config(EXAMPLE_CONFIG)
    aggregations = {m.aggregation.value for m in config.meters}
    assert aggregations >= {"count", "sum", "max", "unique_count", "latest", "time_weighted",
                            "seats", "avg"}  # fmt: skip
    assert config.health is not None and config.health.threshold == 40
    assert config.billing.timezone == "UTC"


def test_held_meters_say_what_they_miss() -> None:
    bad = [
        {"name": "a", "event": "e", "aggregation": "time_weighted", "value": "gb"},
        {"name": "b", "event": "e", "aggregation": "sum", "value": "gb", "per": "hour"},
        {"name": "c", "event": "e", "aggregation": "seats", "per": "day"},
        {"name": "d", "event": "*", "aggregation": "seats", "per": "day", "removed_event": "r"},
        {"name": "f", "event": "e", "aggregation": "count", "removed_event": "r"},
        {"name": "g", "event": "e", "aggregation": "seats", "per": "week", "removed_event": "r"},
    ]
    with pytest.raises(ConfigError) as caught:
        parse_config({"meters": bad})
    report = caught.value.report()
    assert "meters[0]: Value error, a time_weighted meter needs `per`" in report
    assert "meters[1]: Value error, `per` is only for time_weighted and seats meters" in report
    assert "meters[2]: Value error, `removed_event` is needed by seats meters" in report
    assert "meters[3]: Value error, a seats meter names its two events" in report
    assert "meters[4]: Value error, `removed_event` is needed by seats meters" in report
    assert "meters[5].per" in report
    assert len(caught.value.problems) == 6


def test_every_problem_is_reported_at_once_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[billing]\ntimezone = "Mars/Olympus"\n'
        '[[meters]]\nname = "calls"\nevent = "api_call"\naggregation = "count"\nvalue = "x"\n'
        '[[meters]]\nname = "calls"\nevent = "api_call"\naggregation = "average"\n'
        '[[meters]]\nname = "ms"\nevent = "api_call"\naggregation = "sum"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    report = caught.value.report()
    assert "billing.timezone" in report and "Mars/Olympus" in report
    assert "meters[0]: Value error, a count meter takes no `value`" in report
    assert "meters[1].aggregation" in report
    assert "meters[2]: Value error, a sum meter needs `value`" in report
    assert len(caught.value.problems) == 4


def test_duplicate_names_and_unreadable_files_are_errors(tmp_path: Path) -> None:
    meter = {"name": "calls", "event": "e", "aggregation": "count"}
    with pytest.raises(ConfigError, match="calls defined twice"):
        parse_config({"meters": [meter, meter]})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "broken.toml").write_text("[[meters]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "broken.toml")
    assert load_config(None).meters == []


def test_filters_match_json_values_exactly() -> None:
    [meter] = parse_config(
        {"meters": [{"name": "m", "event": "e", "aggregation": "count",
                     "filters": {"ok": True, "code": [200, 201], "plan": "team"}}]}
    ).meters  # fmt: skip
    assert meter.matches("e", {"ok": True, "code": 201, "plan": "team", "extra": 1})
    assert not meter.matches("e", {"ok": 1, "code": 201, "plan": "team"})  # 1 is not true
    assert not meter.matches("e", {"ok": True, "code": 404, "plan": "team"})
    assert not meter.matches("e", {"ok": True, "code": 200})
    assert not meter.matches("other", {"ok": True, "code": 200, "plan": "team"})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(3, Decimal(3)), (2.5, Decimal("2.5")), ("0.1", Decimal("0.1")), (0.1, Decimal("0.1")),
     (True, None), (None, None), ("abc", None), ("NaN", None), ("Infinity", None),
     (1e40, None), ([1], None), ("1.0000000004", Decimal("1"))],
)  # fmt: skip
def test_values_are_decimals_or_skipped(raw: Any, expected: Decimal | None) -> None:
    assert numeric(raw) == expected


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata", "UTC"])
def test_billing_periods_are_local_months(zone: str) -> None:
    billing = Billing(timezone=zone, grace_hours=48)
    moment = datetime(2026, 3, 31, 23, 0, tzinfo=UTC)
    start, end = period_start(moment, billing), period_end(moment, billing)
    local_start, local_end = start.astimezone(billing.zone), end.astimezone(billing.zone)
    assert (local_start.day, local_start.hour, local_start.minute) == (1, 0, 0)
    assert (local_end.day, local_end.hour, local_end.minute) == (1, 0, 0)
    assert start <= moment < end
    assert final_at(moment, billing) == end + timedelta(hours=48)


def _event(i: int, **properties: Any) -> Delivery:
    when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC) + timedelta(seconds=i)
    event = EnrichedEvent(
        tenant="t", type="track", message_id=f"m{i}", event="e", account="a",
        user_id=f"u{i % 2}", properties=properties, timestamp=when, received_at=when,
    )  # fmt: skip
    return Delivery(event, 0, i)


def test_fold_counts_skips_and_keeps_the_latest_by_event_time() -> None:
    config = parse_config(
        {"meters": [{"name": "gb", "event": "e", "aggregation": "latest", "value": "gb"},
                    {"name": "users", "event": "*", "aggregation": "unique_count",
                     "value": "$user"}]}
    )  # fmt: skip
    deliveries = [_event(5, gb=7), _event(1, gb=9), _event(3, gb="n/a"), _event(2)]
    partials = {
        key[1]: partial for key, partial in fold(config, [d.event for d in deliveries]).items()
    }
    assert partials["gb"].events == 2 and partials["gb"].skipped == 2
    assert partials["gb"].latest is not None and partials["gb"].latest[2] == Decimal(7)
    assert partials["users"].uniq == {"u0", "u1"}


def _reference_fold(config: ProductConfig, events: list[EnrichedEvent]) -> dict[Any, Partial]:
    """The fold as the meters define it: every meter asked about every event, in order."""
    partials: dict[Any, Partial] = {}
    final = FinalAt(config.billing)
    for event in events:
        for meter in config.meters:
            if event.type != "track" or not meter.matches(event.event, event.properties):
                continue
            groups = tuple((g, _group_value(event.properties.get(g))) for g in meter.group_by)
            minute = event.timestamp.replace(second=0, microsecond=0)
            late = int(event.received_at >= final(event.timestamp))
            key = (event.tenant, meter.name, event.account, groups, minute, late, 0)
            partials.setdefault(key, Partial()).add(meter, event)
    return partials


_NAMES = st.sampled_from(["a", "b", "c", "*", ""])
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([1.5, "x", "2"]))
_METER = st.fixed_dictionaries(
    {"event": st.sampled_from(["a", "b", "*"]),
     "aggregation": st.sampled_from(["count", "sum", "max", "unique_count", "latest", "avg",
                                     "time_weighted", "seats"]),
     "filters": st.dictionaries(st.sampled_from(["p", "q"]),
                                _VALUES.filter(lambda v: v is not None), max_size=2),
     "group_by": st.lists(st.sampled_from(["p", "q"]), unique=True, max_size=2)}
)  # fmt: skip


def _complete(i: int, meter: dict[str, Any]) -> dict[str, Any]:
    """A drawn meter with what its aggregation needs; seats remove with `c`, never add with *."""
    needs: dict[str, dict[str, Any]] = {
        "count": {},
        "unique_count": {"value": "$user"},
        "time_weighted": {"value": "p", "per": "hour"},
        "seats": {"per": "day", "removed_event": "c", "event": meter["event"].replace("*", "a")},
    }
    return {**meter, "name": f"m{i}", **needs.get(meter["aggregation"], {"value": "p"})}


@given(
    meters=st.lists(_METER, min_size=1, max_size=5),
    events=st.lists(
        st.tuples(st.sampled_from(["track", "identify"]), _NAMES,
                  st.dictionaries(st.sampled_from(["p", "q"]), _VALUES, max_size=2),
                  st.integers(0, 2), st.booleans()),
        max_size=30,
    ),
)  # fmt: skip
def test_fold_matches_asking_every_meter_about_every_event(
    meters: list[dict[str, Any]], events: list[tuple[str, str, dict[str, Any], int, bool]]
) -> None:
    """Events share their times (as a batch's often do), some received after their period
    became final."""
    config = parse_config({"meters": [_complete(i, m) for i, m in enumerate(meters)]})
    when = datetime(2026, 3, 31, 23, 59, 30, tzinfo=UTC)
    stream = [
        EnrichedEvent(tenant="t", type=kind, message_id=f"m{i}", event=name, account="a",
                      user_id=f"u{i % 3}", properties=properties,
                      timestamp=when + timedelta(seconds=17 * at),
                      received_at=when + timedelta(days=5 if late else 0))
        for i, (kind, name, properties, at, late) in enumerate(events)
    ]  # fmt: skip
    assert fold(config, stream) == _reference_fold(config, stream)


def test_numeric_reads_an_int_and_an_equal_float_each_as_written() -> None:
    exact, rounded = 2**60, float(2**60)  # equal in Python, written differently
    assert numeric(exact) == Decimal("1152921504606846976")
    assert numeric(rounded) == Decimal("1152921504606847000")
    assert numeric(exact) == Decimal("1152921504606846976")  # not the float's, remembered


def test_numeric_reads_long_texts_without_keeping_them() -> None:
    long = "1" + "0" * 60 + ".5"  # past the limit: not a quantity
    assert numeric(long) is None and numeric(" 12.5 ") == Decimal("12.5")
    assert numeric("0" * 60 + "7") == Decimal(7)


@given(
    reports=st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from(["a", "b", "c"]), st.integers(-5, 5)),
        min_size=1, max_size=12,
    )
)  # fmt: skip
def test_a_partial_keeps_sum_extremes_and_the_latest_by_time_then_id_in_any_order(
    reports: list[tuple[int, str, int]],
) -> None:
    """Ties in event time are broken by message id, so every arrival order keeps the same."""
    meter = parse_config(
        {"meters": [{"name": "gb", "event": "e", "aggregation": "latest", "value": "gb"}]}
    ).meters[0]
    when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    partial = Partial()
    for seconds, message_id, gb in reports:
        partial.add(meter, EnrichedEvent(
            tenant="t", type="track", message_id=message_id, event="e", properties={"gb": gb},
            timestamp=when + timedelta(seconds=seconds), received_at=when,
        ))  # fmt: skip
    values = [Decimal(gb) for _, _, gb in reports]
    assert (partial.value_sum, partial.value_min, partial.value_max) == (
        sum(values), min(values), max(values),
    )  # fmt: skip
    seconds, message_id, gb = max(reports, key=lambda r: (r[0], r[1]))
    assert partial.latest == (when + timedelta(seconds=seconds), message_id, Decimal(gb))
