"""The fold's remembered lateness cut-off is exactly `final_at`, in any zone, at any moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.metering.calendar import FinalAt, final_at
from schemas.config import Billing

# UTC, zones with DST (north and south), a zone whose offset once had seconds, and one that
# skipped a whole day: the month boundaries that could trip a cache keyed on local months.
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Africa/Monrovia",
         "Pacific/Apia", "America/Sao_Paulo"]  # fmt: skip


@pytest.mark.parametrize("zone", ZONES)
@settings(max_examples=300, deadline=None)
@given(
    moments=st.lists(
        st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)),
        min_size=1,
        max_size=40,
    )
)
def test_remembered_final_at_is_final_at(zone: str, moments: list[datetime]) -> None:
    billing = Billing(timezone=zone, grace_hours=48)
    remembered = FinalAt(billing)
    for moment in (m.replace(tzinfo=UTC) for m in moments):
        assert remembered(moment) == final_at(moment, billing)


@pytest.mark.parametrize("zone", ZONES)
def test_every_hour_around_month_ends(zone: str) -> None:
    billing = Billing(timezone=zone, grace_hours=0)
    remembered = FinalAt(billing)
    for year in (1971, 2011, 2026):
        for month in range(1, 13):
            start = datetime(year, month, 1, tzinfo=UTC) - timedelta(hours=30)
            for minutes in range(0, 60 * 60, 17):
                moment = start + timedelta(minutes=minutes, seconds=minutes % 60)
                assert remembered(moment) == final_at(moment, billing)
