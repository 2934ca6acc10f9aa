"""`usage-stream webhooks run|receive|resend`: the sender of usage alerts, a local receiver to
try them with, and sending one record again."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any


def cmd_webhooks(args: argparse.Namespace) -> int:
    from usage_stream.cli import settings_in_force

    settings = settings_in_force()
    if args.action == "run":
        from processors.webhooks.process import run_webhooks

        run_webhooks(settings)
        return 0
    if args.action == "receive":
        from usage_stream.demo import DEMO_WEBHOOK_SECRET, WEBHOOK_RECEIVER_PORT, received_path
        from usage_stream.webhook_receiver import serve

        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C or SIGINT: stopped, no trace
            serve(
                "127.0.0.1",
                args.port or WEBHOOK_RECEIVER_PORT,
                args.secret or DEMO_WEBHOOK_SECRET,
                received_path(settings.data_dir),
            )
        return 0
    from processors.storage.clickhouse import open_clickhouse
    from processors.webhooks import DeliveryLog, DeliveryStatus, endpoints
    from processors.webhooks.resend import UnknownRecord, resend
    from schemas.config import ConfigError, load_config

    try:
        product = load_config(settings.config_file)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return 1
    clickhouse = open_clickhouse(
        settings.clickhouse_dsn, settings.clickhouse_database, settings.clickhouse_secret()
    )
    try:
        outcomes = resend(
            args.id, endpoints(product.webhooks), DeliveryLog(clickhouse), args.endpoint
        )
    except UnknownRecord as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"record {args.id}:")
    for outcome in outcomes:
        print(f"  {outcome.describe()}")
    return 0 if all(o.status is DeliveryStatus.DELIVERED for o in outcomes) else 1


def add_command(sub: Any) -> None:
    webhooks = sub.add_parser(
        "webhooks",
        help="deliver usage alerts as signed webhooks, or send one again",
        description="Usage alerts (the USAGE_STREAM_ALERTS_TOPIC topic) POSTed to each tenant's"
        " [[webhooks]] endpoints of USAGE_STREAM_CONFIG_FILE, signed the Standard Webhooks way,"
        " retried with backoff for the endpoint's retry_for; every attempt is kept in the"
        " ClickHouse table webhook_deliveries (GET /v1/webhooks/deliveries lists them).",
    )
    action = webhooks.add_subparsers(dest="action", required=True, metavar="ACTION")
    action.add_parser(
        "run",
        help="run the sender: its own consumer group, /metrics on USAGE_STREAM_WEBHOOKS_PORT",
        description="Consumes the alerts topic in its own consumer group and delivers each"
        " record to its tenant's endpoints; resumes the pending deliveries of its partitions"
        " from the delivery log. Serves /metrics, /healthz and /readyz on"
        " USAGE_STREAM_WEBHOOKS_HOST:USAGE_STREAM_WEBHOOKS_PORT. SIGTERM or SIGINT stops it.",
    )
    resend = action.add_parser(
        "resend",
        help="send one record again (same webhook-id) and print what each endpoint answered",
        description="Looks the record up in the delivery log and POSTs it once more to every"
        " endpoint it was delivered (or failed to be delivered) to, with the same webhook-id."
        " Exits 1 unless every endpoint answered 2xx.",
    )
    receive = action.add_parser(
        "receive",
        help="a local receiver that verifies signatures and prints each record (the demo's)",
        description="Listens on 127.0.0.1, verifies every request's Standard Webhooks signature"
        " with the secret, prints one line per record and appends them to"
        " USAGE_STREAM_DATA_DIR/logs/webhooks-received.jsonl. For trying webhooks locally;"
        " `usage-stream up` runs it for the demo's endpoints.",
    )
    receive.add_argument("--port", type=int, help="default 8090, the demo's endpoints' port")
    receive.add_argument("--secret", help="whsec_…; default: the demo's endpoints' secret")
    resend.add_argument("id", metavar="ID", help="the alert record's id (its webhook-id)")
    resend.add_argument("--endpoint", metavar="NAME", help="only to this endpoint")
    webhooks.set_defaults(func=cmd_webhooks)
