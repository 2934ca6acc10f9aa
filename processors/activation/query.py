"""Reading activations: one tenant's outcomes, and signup cohorts with rate and time to value."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from processors.activation.records import ACTIVATION, MISSED, OUTCOME_COLUMNS
from processors.storage.clickhouse import ClickHouse
from schemas.events import UtcDatetime

# what a reader is shown of the activations table: its columns but the tenant (implied by the
# key) and the Kafka place (the worker's bookkeeping), and when the row was written
_SHOWN = (
    *(c for c in OUTCOME_COLUMNS if c not in {"tenant", "kafka_partition", "kafka_offset"}),
    "written_at",
)


# One activation outcome: a subject activated, or its window closed without it
class ActivationOut(BaseModel):
    id: str
    type: str
    rule: str
    subject: str
    account: str
    user_id: str | None
    started_at: UtcDatetime
    deadline: UtcDatetime
    activated_at: UtcDatetime | None
    time_to_value_seconds: float | None
    qualifying_message_id: str | None
    written_at: UtcDatetime


# The subjects whose window opened in one day or week, and what became of them
class CohortOut(BaseModel):
    cohort: str
    subjects: int  # whose window opened in the cohort
    activated: int
    missed: int
    pending: int  # window still open (or not yet decided)
    activation_rate: float
    time_to_value_median_seconds: float | None
    time_to_value_p90_seconds: float | None


class Cohort(StrEnum):
    DAY = "day"
    WEEK = "week"  # weeks start on Monday, in the requested zone


_COHORT_OF = {
    Cohort.DAY: "toDate(s.started, {tz:String})",
    Cohort.WEEK: "toStartOfWeek(s.started, 1, {tz:String})",
}


def list_outcomes(
    clickhouse: ClickHouse,
    tenant: str,
    *,
    rule: str | None = None,
    account: str | None = None,
    user: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[ActivationOut]:
    """Newest verdicts first (by activated_at, or the deadline for missed windows)."""
    where = ["tenant = {tenant:String}"]
    for column, value in (("rule", rule), ("account", account), ("user_id", user), ("type", kind)):
        if value is not None:
            where.append(f"{column} = {{{column}:String}}")
    rows = clickhouse.query(
        f"SELECT {', '.join(_SHOWN)} FROM activations WHERE {' AND '.join(where)}"
        " ORDER BY coalesce(activated_at, deadline) DESC, id"
        " LIMIT {limit:UInt32} OFFSET {offset:UInt32}",
        {"tenant": tenant, "rule": rule, "account": account, "user_id": user, "type": kind,
         "limit": limit, "offset": offset},
    )  # fmt: skip
    out = []
    for row in rows:
        record = dict(zip(_SHOWN, row, strict=True))
        ttv = record.pop("time_to_value_ms")
        record["time_to_value_seconds"] = None if ttv is None else int(ttv) / 1000
        record["user_id"] = record["user_id"] or None
        record["qualifying_message_id"] = record["qualifying_message_id"] or None
        out.append(ActivationOut.model_validate(record))
    return out


def _seconds(ms: Any) -> float | None:
    value = float(ms)
    return None if math.isnan(value) else value / 1000


def cohorts(
    clickhouse: ClickHouse,
    tenant: str,
    rule: str,
    cohort: Cohort,
    tz: str,
    start: datetime,
    to: datetime,
) -> list[CohortOut]:
    """Subjects by the day or week their window opened (in `tz`), within [start, to).
    Quantiles are exact and interpolate like PERCENTILE.INC (median of 2 values: their mean)."""
    rows = clickhouse.query(
        f"SELECT {_COHORT_OF[cohort]} AS cohort, count(),"
        f" countIf(a.type = '{ACTIVATION}'), countIf(a.type = '{MISSED}'),"
        f" quantileExactInclusiveIf(0.5)(ifNull(a.ttv, 0), a.type = '{ACTIVATION}'),"
        f" quantileExactInclusiveIf(0.9)(ifNull(a.ttv, 0), a.type = '{ACTIVATION}')"
        " FROM (SELECT account, user_id, min(started_at) AS started FROM activation_starts"
        "       WHERE tenant = {tenant:String} AND rule = {rule:String}"
        "       GROUP BY account, user_id) AS s"
        " LEFT JOIN (SELECT account, user_id, type, time_to_value_ms AS ttv FROM activations"
        "            WHERE tenant = {tenant:String} AND rule = {rule:String}) AS a"
        " USING (account, user_id)"
        " WHERE s.started >= {start:DateTime64(3, 'UTC')} AND s.started < {to:DateTime64(3, 'UTC')}"
        " GROUP BY cohort ORDER BY cohort",
        {"tenant": tenant, "rule": rule, "tz": tz, "start": start, "to": to},
    )
    return [
        CohortOut(
            cohort=c.isoformat(),
            subjects=int(n),
            activated=int(activated),
            missed=int(missed),
            pending=int(n) - int(activated) - int(missed),
            activation_rate=int(activated) / int(n) if int(n) else 0.0,
            time_to_value_median_seconds=_seconds(median) if activated else None,
            time_to_value_p90_seconds=_seconds(p90) if activated else None,
        )
        for c, n, activated, missed, median, p90 in rows
    ]
