"""Reading usage alerts back: one tenant's records, newest first, as `/v1/alerts` answers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from processors.alerts.recovery import ALERT_COLUMNS, ALERTS_TABLE
from processors.storage.clickhouse import ClickHouse
from processors.windows import as_utc


def list_alerts(
    clickhouse: ClickHouse,
    tenant: str,
    account: str | None = None,
    meter: str | None = None,
    period: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """DISTINCT: a record sent twice (after a crash) is one record, merged or not yet."""
    where = ["tenant = {tenant:String}"]
    for name, value in (("account", account), ("meter", meter), ("period", period),
                        ("kind", kind)):  # fmt: skip
        if value is not None:
            where.append(f"{name} = {{{name}:String}}")
    parameters = {"tenant": tenant, "account": account, "meter": meter, "period": period,
                  "kind": kind, "limit": limit, "offset": offset}  # fmt: skip
    rows = clickhouse.query(
        f"SELECT DISTINCT {', '.join(ALERT_COLUMNS)} FROM {ALERTS_TABLE}"
        f" WHERE {' AND '.join(where)} ORDER BY at DESC, id"
        " LIMIT {limit:UInt32} OFFSET {offset:UInt32}",
        parameters,
    )
    out = []
    for row in rows:
        found = dict(zip(ALERT_COLUMNS, row, strict=True))
        for name in ("level", "quantity", "included"):
            if found[name] is not None:
                found[name] = f"{Decimal(found[name]).normalize():f}"
        found["at"] = as_utc(found["at"]).isoformat(timespec="milliseconds")
        found["with_others"] = list(found["with_others"])
        found["late"] = bool(found["late"])
        out.append(found)
    return out
