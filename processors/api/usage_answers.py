"""What every usage answer says besides its figures: whether they are final, how complete they
are, and the moment they were read at."""

from datetime import UTC, datetime
from typing import Any

from processors.metering.calendar import is_final
from processors.windows import to_millisecond
from schemas.config import Billing

COMPLETE_THROUGH = (
    "The receipt time through which every event is folded by every processor, from the"
    " worker's stored progress; null until it has recorded any. Events received later may"
    " still change the figures."
)
AS_OF = "The moment of the answer: held quantities (time_weighted, seats) are held up to it"


def answer_moment() -> datetime:
    """The clock to the millisecond: what held quantities are held up to, and `as_of` says."""
    return to_millisecond(datetime.now(UTC))


def standing(
    end: datetime, billing: Billing, now: datetime, through: datetime | None
) -> dict[str, Any]:
    """The `final`, `complete_through` and `as_of` of an answer for a range ending at `end`."""
    return {
        "final": is_final(end, billing, through),
        "complete_through": through.isoformat() if through else None,
        "as_of": now.isoformat(),
    }
