"""Held meters against a plain integral: random report streams, receipt times, periods and `now`.

The reference knows nothing of levels, pieces or caches: it cuts the range at every instant
where anything could change and, for each stretch, folds from scratch the reports that stretch
may see (received before its billing period became final, for the invoice), then adds up level
x time as an exact fraction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.metering.calendar import final_at, period_end, period_start, periods_between
from processors.metering.fold import SCALE
from processors.metering.held_fold import Report, held_quantities
from processors.windows import Window, windows_between
from schemas.config import Billing
from schemas.meters import Meter

AUGUST = datetime(2026, 8, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def level_at(meter: Meter, seen: list[Report], x: datetime) -> Fraction | None:
    """The level held at instant x by the reports `seen`, folded in (time, id) order."""
    ordered = sorted((r for r in seen if r.at <= x), key=lambda r: (r.at, r.id))
    if meter.aggregation == "seats":
        level = Fraction(0)
        for r in ordered:
            level = max(Fraction(0), level + Fraction(r.value))
        return level
    if not ordered:
        return None
    last = ordered[-1]
    if meter.expires_after is not None and x >= last.at + meter.expires_after:
        return None
    return Fraction(last.value)


def reference(
    meter: Meter,
    billing: Billing,
    reports: list[Report],
    start: datetime,
    end: datetime,
    now: datetime,
    view: str,
) -> Decimal | None:
    """One window's quantity in `view`: "invoice" and "every" held to now, "projected" to end."""
    stop = end if view == "projected" else min(end, now)
    if stop <= start:
        return None
    bounds = {start, stop}
    for r in reports:
        bounds |= {r.at, r.at + (meter.expires_after or timedelta(0))}
    moment = period_start(start, billing)
    while moment < stop:
        bounds.add(moment)
        moment = period_end(moment, billing)
    total, held = Fraction(0), False
    for x, y in pairwise(sorted(b for b in bounds if start <= b <= stop)):
        closes = final_at(x, billing)
        seen = reports if view == "every" else [r for r in reports if r.received < closes]
        level = level_at(meter, seen, x)
        if level is None:
            continue
        held = True
        assert meter.per is not None
        seconds = meter.per.seconds
        unit = (
            seconds * 1000 if seconds else (period_end(x, billing) - period_start(x, billing)) // MS
        )
        total += level * Fraction((y - x) // MS, unit)
    if not held:
        return None
    with localcontext(prec=80):  # far past the stored scale: the rounding below is the only one
        exact = Decimal(total.numerator) / Decimal(total.denominator)
    return exact.quantize(SCALE, ROUND_HALF_EVEN)


times = st.integers(min_value=0, max_value=150 * 24 * 3600 * 1000).map(lambda ms: AUGUST + ms * MS)


@st.composite
def streams(draw: st.DrawFn) -> tuple[Meter, Billing, list[Report], datetime, datetime, datetime]:
    seats = draw(st.booleans())
    per = draw(st.sampled_from(["hour", "day", "period"]))
    if seats:
        meter = Meter(name="m", event="a", removed_event="r", aggregation="seats", per=per)
    else:
        expires = draw(st.sampled_from([None, timedelta(hours=6), timedelta(days=9)]))
        meter = Meter(name="m", event="a", aggregation="time_weighted", value="v", per=per,
                      expires_after=expires)  # fmt: skip
    billing = Billing(
        timezone=draw(st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"])),
        grace_hours=draw(st.sampled_from([0, 24, 72, 24 * 20])),
    )
    reports = []
    for i in range(draw(st.integers(0, 8))):
        at = draw(times)
        delay = draw(st.integers(-3600, 60 * 24 * 3600)) * 1000 * MS
        value = (
            Decimal(draw(st.integers(-3, 4)))
            if seats
            else Decimal(draw(st.integers(0, 10**6))) / 1000
        )
        reports.append(Report(at, f"id{i:02d}", value, at + delay))
    start, end = sorted([draw(times), draw(times)])
    end = max(end, start + MS)
    now = draw(times)
    return meter, billing, reports, start, end, now


@settings(max_examples=400, deadline=None)
@given(stream=streams(), window=st.sampled_from([Window.TOTAL, Window.DAY, Window.MONTH]))
def test_held_quantities_are_the_plain_integral(
    stream: tuple[Meter, Billing, list[Report], datetime, datetime, datetime], window: Window
) -> None:
    meter, billing, reports, start, end, now = stream
    zone = ZoneInfo("America/New_York")
    windows = [(max(a, start), min(b, end)) for a, b in windows_between(start, end, window, zone)]
    periods = periods_between(start, end, billing)
    closes = [b + billing.grace for _, b in periods]
    found = held_quantities(meter, reports, windows, periods, closes.__getitem__, now)
    for w, (a, b) in enumerate(windows):
        got = found.get(w)
        assert (got.quantity if got else None) == reference(
            meter, billing, reports, a, b, now, "invoice"
        )
        assert (got.adjusted_quantity if got else None) == reference(
            meter, billing, reports, a, b, now, "every"
        )
        assert (got.projected_quantity if got else None) == reference(
            meter, billing, reports, a, b, now, "projected"
        )
