"""Reading the worker's ClickHouse after the run: freshness, and that each event was stored once.

It runs as its own process once the worker has stopped (all it held is then written):
`python -m usage_stream.bench.readback ...`, on the worker's database. Freshness is
`stored_at - received_at` of every event of the tenant: from the collector's receive time to
the insert that made the event queryable (stored_at is the insert's now64(3)).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from processors.storage.clickhouse import connect
from usage_stream.bench import database


def freshness(where: tuple[str, str], tenant: str) -> dict[str, Any]:
    """Events stored for `tenant` in `where` (dsn, database), distinct ids among them, and
    freshness percentiles (s)."""
    client = connect(*where, database.password())
    row = client.query(
        "SELECT count(), uniqExact(message_id),"
        " quantilesExact(0.5, 0.95, 0.99)(toFloat64(stored_at) - toFloat64(received_at)),"
        " max(toFloat64(stored_at) - toFloat64(received_at))"
        " FROM events WHERE tenant = {tenant:String}",
        parameters={"tenant": tenant},
    ).result_rows[0]
    count, distinct, quantiles, worst = row
    metered = client.query(
        "SELECT sum(events) FROM meter_minutes WHERE tenant = {tenant:String}"
        " AND meter = 'active_users'",
        parameters={"tenant": tenant},
    ).result_rows[0][0]
    return {
        "stored": int(count),
        "distinct_ids": int(distinct),
        "p50": float(quantiles[0]) if count else None,
        "p95": float(quantiles[1]) if count else None,
        "p99": float(quantiles[2]) if count else None,
        "max": float(worst) if count else None,
        "metered_events": int(metered or 0),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="freshness and exactness of a stopped worker's data")
    database.add_arguments(p, "usage_stream")  # the worker's
    p.add_argument("--tenant", action="append", required=True)
    args = p.parse_args(argv)
    where = (args.dsn, args.database)
    found = {tenant: freshness(where, tenant) for tenant in args.tenant}
    print(json.dumps(found), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
