"""The billing calendar: months in the billing zone, and when a period becomes final."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.config import Billing


def period_start(moment: datetime, billing: Billing) -> datetime:
    """The start of the billing month holding `moment`, in the billing zone, as UTC."""
    local = moment.astimezone(billing.zone)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def period_end(moment: datetime, billing: Billing) -> datetime:
    local = period_start(moment, billing).astimezone(billing.zone)
    following = local.replace(year=local.year + local.month // 12, month=local.month % 12 + 1)
    return following.astimezone(UTC)


def periods_between(
    start: datetime, to: datetime, billing: Billing
) -> list[tuple[datetime, datetime]]:
    """The billing periods covering [start, to), each as (start, end), in order."""
    out = []
    opened = period_start(start, billing)
    while opened < to:
        end = period_end(opened, billing)
        out.append((opened, end))
        opened = end
    return out


def final_at(moment: datetime, billing: Billing) -> datetime:
    """When the period holding `moment` becomes final: its end plus the grace period."""
    return period_end(moment, billing) + billing.grace


def is_final(end: datetime, billing: Billing, complete_through: datetime | None) -> bool:
    """A window is final once the billing period of its last instant is, and every event
    received before that moment is folded (`complete_through`, from the worker's progress): a
    worker that lags or was stopped over the grace boundary keeps it open until it caught up,
    so a number read as final never changes."""
    closes = final_at(end - timedelta(microseconds=1), billing)
    return complete_through is not None and complete_through >= closes


class FinalAt:
    """`final_at`, remembered per local (year, month, fold) in the billing zone: the period's
    start is that local month's first midnight, so nothing else can change the answer. Zone
    arithmetic for every event and meter was most of the fold's time."""

    def __init__(self, billing: Billing) -> None:
        self._billing = billing
        self._zone = billing.zone
        self._known: dict[tuple[int, int, int], datetime] = {}

    def __call__(self, moment: datetime) -> datetime:
        local = moment.astimezone(self._zone)
        key = (local.year, local.month, local.fold)
        found = self._known.get(key)
        if found is None:
            found = self._known[key] = final_at(moment, self._billing)
        return found
