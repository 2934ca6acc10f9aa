"""The `usage-stream` command: run the stack, its parts, local Kafka and ClickHouse, the demo."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from schemas.settings import NoClickHouse, Settings


def settings_in_force() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            f"  USAGE_STREAM_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
            for e in exc.errors()
        ]
        raise SystemExit("invalid configuration:\n" + "\n".join(lines)) from None


def cmd_config(args: argparse.Namespace) -> int:
    from schemas.config import ConfigError, load_config

    settings = settings_in_force()
    path = args.file or settings.config_file
    try:
        product = load_config(path)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return 1
    if not args.validate:
        print(json.dumps(settings.masked(), indent=2, default=str))
        print(json.dumps(product.model_dump(mode="json"), indent=2))
    else:
        print(
            f"configuration is valid: {len(product.meters)} meter(s),"
            f" {len(product.activation.rules)} activation rule(s),"
            f" {len(product.webhooks)} webhook endpoint(s) in {path or '(no file)'}"
        )
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    from usage_stream.billing_cli import cmd_backfill as run

    return run(args, settings_in_force())


def cmd_reconcile(args: argparse.Namespace) -> int:
    from usage_stream.billing_cli import cmd_reconcile as run

    return run(args, settings_in_force())


def cmd_collector(args: argparse.Namespace) -> int:
    from ingest.process import run_collector

    settings = settings_in_force()
    if args.processes is not None:
        settings = settings.model_copy(update={"collector_processes": args.processes})
    run_collector(settings)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from processors.worker.process import run_worker

    run_worker(settings_in_force())
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from processors.storage.clickhouse import connect, migrate

    settings = settings_in_force()
    client = connect(
        settings.clickhouse_dsn,
        settings.clickhouse_database,
        settings.clickhouse_secret(),
    )
    applied = migrate(client)
    print(f"applied {len(applied)} migration(s): {applied}" if applied else "schema is up to date")
    return 0


def cmd_kafka(args: argparse.Namespace) -> int:
    from usage_stream.broker import fetch_jars
    from usage_stream.up import local_broker

    settings = settings_in_force()
    broker = local_broker(settings)
    if args.action == "fetch":
        print(f"Kafka jars in {fetch_jars()}")
    elif args.action == "start":
        broker.start()
        print(f"Kafka broker ready on {broker.bootstrap}; logs in {broker.log_file}")
    elif args.action == "stop":
        broker.stop()
        print("Kafka broker stopped")
    else:
        pid = broker.pid()
        print(f"running (pid {pid}) on {broker.bootstrap}" if pid else "not running")
        return 0 if pid else 3
    return 0


def cmd_clickhouse(args: argparse.Namespace) -> int:
    from usage_stream.clickhouse_server import LocalClickHouse

    settings = settings_in_force()
    server = LocalClickHouse(
        settings.local_clickhouse_dir,
        settings.clickhouse_http_port,
        settings.clickhouse_tcp_port,
    )
    if args.action == "start":
        server.start()
        print(
            f"ClickHouse ready on {server.url} (native protocol on port {server.tcp_port});"
            f" user {server.user}, password in {server.credentials_file};"
            f" logs in {server.log_file}\n"
            "every usage-stream command with this USAGE_STREAM_DATA_DIR uses it; other"
            f" clients connect to {server.dsn} with that password"
        )
    elif args.action == "stop":
        server.stop()
        print("ClickHouse server stopped")
    else:
        pid = server.pid()
        print(f"running (pid {pid}) on {server.url}" if pid else "not running")
        return 0 if pid else 3
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from usage_stream.up import up

    return up(
        settings_in_force(),
        demo_run=not args.no_demo,
        stay=not args.exit_after_demo,
        workers=args.workers,
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from usage_stream import demo

    settings = settings_in_force()
    write, read = demo.demo_keys()
    demo.run(
        f"http://{settings.collector_host}:{settings.collector_port}",
        f"http://{settings.worker_host}:{settings.worker_port}",
        {t: k.get_secret_value() for t, k in settings.write_keys.items()} or write,
        {t: k.get_secret_value() for t, k in settings.read_keys.items()} or read,
        data_dir=settings.data_dir,
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from schemas.config import EXAMPLE_CONFIG, ConfigError, load_config
    from usage_stream.bench import BenchOptions, extra, run_bench

    extra.require()
    config = Path(args.config) if args.config else EXAMPLE_CONFIG
    try:
        load_config(config)  # a broken file fails here, not minutes in inside the worker
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return 1
    report = run_bench(
        BenchOptions(
            duration=args.duration,
            events=args.events,
            partitions=args.partitions,
            collectors=args.collectors,
            connections=args.connections,
            batch=args.batch,
            sink_batch_size=args.sink_batch_size,
            sink_batch_seconds=args.sink_batch_seconds,
            output=Path(args.output),
            profile=Path(args.profile) if args.profile else None,
            keep=args.keep,
            config=config,
            history=args.history,
            compression=args.compression,
        )
    )
    return 0 if report["exactness"]["exact"] else 1


def _up_epilog() -> str:
    """What `up` reads, with the defaults the settings really have."""
    from schemas.config import EXAMPLE_CONFIG
    from schemas.settings import Settings

    default = {name: field.default for name, field in Settings.model_fields.items()}
    return f"""\
what it uses (environment variables, defaults in brackets):
  USAGE_STREAM_CONFIG_FILE       meters, rules, health  [{EXAMPLE_CONFIG.name}, shipped]
  USAGE_STREAM_DATA_DIR          ClickHouse data, broker files, logs, the demo's anchor
                                 [{default["data_dir"]}]
  USAGE_STREAM_KAFKA_BOOTSTRAP   the broker; a local one listens there, its controller on
                                 port + 1  [{default["kafka_bootstrap"]}]
  USAGE_STREAM_CLICKHOUSE_HTTP_PORT, USAGE_STREAM_CLICKHOUSE_TCP_PORT
                                 the local ClickHouse server  [{default["clickhouse_http_port"]},\
 {default["clickhouse_tcp_port"]}]
  USAGE_STREAM_COLLECTOR_PORT    the collector  [{default["collector_port"]}]
  USAGE_STREAM_WORKER_PORT       the first worker's read API; the next ones take the ports
                                 after it  [{default["worker_port"]}]
  USAGE_STREAM_WEBHOOKS_PORT     the webhook sender's /metrics  [{default["webhooks_port"]}]
  USAGE_STREAM_WRITE_KEYS, USAGE_STREAM_READ_KEYS
                                 tenants' keys as JSON  [the demo's: wk_demo_acme, rk_demo_acme…]
`usage-stream config` prints every setting in force."""


def parser() -> argparse.ArgumentParser:
    from usage_stream.webhooks_cli import add_command as add_webhooks_command

    p = argparse.ArgumentParser(
        prog="usage-stream",
        description="Usage analytics from product events: collector → Kafka → workers → ClickHouse."
        " Configured by USAGE_STREAM_* environment variables (see `usage-stream config`).",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_up(sub)
    _add_processes(sub)
    add_webhooks_command(sub)
    _add_local_services(sub)
    _add_config(sub)
    _add_bench(sub)

    from usage_stream.bench.activation import add_command as add_bench_activation

    add_bench_activation(sub)

    _add_billing(sub)
    return p


def _add_up(sub: Any) -> None:
    up = sub.add_parser(
        "up",
        help="start Kafka, the worker and the collector locally, run the demo",
        description="Starts a local ClickHouse server and Kafka broker (unless\n"
        "USAGE_STREAM_CLICKHOUSE_URL or a remote USAGE_STREAM_KAFKA_BOOTSTRAP points elsewhere),\n"
        "the worker(s) and the collector, then sends the demo's events. Ctrl-C (SIGINT) or\n"
        "SIGTERM stops everything it started.",
        epilog=_up_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument("--no-demo", action="store_true", help="start the stack without the demo")
    up.add_argument(
        "--exit-after-demo", action="store_true", help="stop everything once the demo has landed"
    )
    up.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="workers splitting the partitions of `events`, on USAGE_STREAM_WORKER_PORT and the"
        " ports after it (default 1)",
    )
    up.set_defaults(func=cmd_up)


def _add_processes(sub: Any) -> None:
    """The long-running parts, and the demo that sends to them."""
    collector = sub.add_parser("collector", help="run the HTTP collector")
    collector.add_argument(
        "--processes",
        type=int,
        metavar="N",
        help="processes answering on the port (default: USAGE_STREAM_COLLECTOR_PROCESSES, or"
        " one per core); each keeps its own Kafka producer and rate limits",
    )
    collector.set_defaults(func=cmd_collector)
    sub.add_parser("worker", help="run a stream worker and its read API").set_defaults(
        func=cmd_worker
    )
    sub.add_parser("migrate", help="apply ClickHouse schema migrations").set_defaults(
        func=cmd_migrate
    )
    demo = sub.add_parser("demo", help="send synthetic product events to a running stack")
    demo.set_defaults(func=cmd_demo)


def _add_local_services(sub: Any) -> None:
    """The broker and the ClickHouse server a machine runs for itself."""
    kafka = sub.add_parser("kafka", help="the local single-node Kafka broker")
    kafka.add_argument("action", choices=("fetch", "start", "stop", "status"))
    kafka.set_defaults(func=cmd_kafka)

    clickhouse = sub.add_parser(
        "clickhouse",
        help="a local ClickHouse server on the chDB engine, for several processes at once",
        description="Runs the chDB engine as a server on 127.0.0.1 (data under"
        " USAGE_STREAM_DATA_DIR/clickhouse-server), reached over HTTP like any ClickHouse"
        " server. `status` exits 3 when it is not running.",
    )
    clickhouse.add_argument("action", choices=("start", "stop", "status"))
    clickhouse.set_defaults(func=cmd_clickhouse)


def _add_config(sub: Any) -> None:
    config = sub.add_parser(
        "config", help="print the settings (secrets masked) and the meters file, or check them"
    )
    config.add_argument(
        "--validate", action="store_true", help="only check them; exit non-zero on any error"
    )
    config.add_argument("--file", help="check this config file instead of USAGE_STREAM_CONFIG_FILE")
    config.set_defaults(func=cmd_config)


def _add_billing(sub: Any) -> None:
    """Recomputing meters from the raw events: backfill writes, reconcile only compares."""
    from usage_stream.billing_cli import add_range_arguments

    backfill = sub.add_parser(
        "backfill",
        help="recompute meters from the raw events for a time range (new or changed meters)",
        description="Replaces the meters' per-minute quantities in [--from, --to) with a"
        " recomputation from the raw events.",
    )
    add_range_arguments(backfill)
    backfill.set_defaults(func=cmd_backfill)
    reconcile = sub.add_parser(
        "reconcile",
        help="compare stored quantities with a recomputation; exit 1 on any difference",
        description="Recomputes the meters from the raw events and lists every (meter, tenant,"
        " customer, groups, minute) whose stored quantity differs. Read-only.",
    )
    add_range_arguments(reconcile)
    reconcile.add_argument("--show", type=int, default=50, help="differences to print")
    reconcile.set_defaults(func=cmd_reconcile)


def _add_bench(sub: Any) -> None:
    bench = sub.add_parser(
        "bench",
        help="measure throughput, freshness, CPU and memory on a private local stack",
        description="Starts its own Kafka broker and local ClickHouse server (free ports, a"
        " temporary directory), collector and workers, and measures: the collector alone"
        " (batches of --batch events), a baseline Kafka → ClickHouse copier and the worker on"
        " the same pre-loaded topic (both over HTTP to the server), two workers in one group,"
        " end-to-end"
        " throughput from HTTP to ClickHouse flat out and sustained with the consumer lag flat,"
        " and freshness (receivedAt → stored in ClickHouse) at half the sustained rate. Prints a"
        " table, writes the JSON report, stops everything it started. Exits 1 if any event was"
        " lost or stored twice. Takes about 2 minutes plus 4 times --duration.",
    )
    bench.add_argument(
        "--duration", type=float, default=20.0, help="seconds of load per load phase (20)"
    )
    bench.add_argument(
        "--events",
        type=int,
        default=200_000,
        help="events (at least) the worker and the copier read from the pre-loaded topic (200000)",
    )
    bench.add_argument("--partitions", type=int, default=6, help="partitions of the topic (6)")
    bench.add_argument(
        "--collectors", type=int, default=1, help="collector processes behind the load (1)"
    )
    bench.add_argument("--connections", type=int, default=8, help="concurrent HTTP connections (8)")
    bench.add_argument("--batch", type=int, default=100, help="events per HTTP request (100)")
    bench.add_argument(
        "--sink-batch-size", type=int, default=10_000, help="worker and copier batch size (10000)"
    )
    bench.add_argument(
        "--sink-batch-seconds", type=float, default=0.25, help="worker and copier batch wait (0.25)"
    )
    bench.add_argument(
        "--compression",
        choices=("none", "gzip", "lz4", "zstd"),
        default="zstd",
        help="Kafka batch compression of the collectors and the pre-loaded topic (zstd, the"
        " collector's default)",
    )
    bench.add_argument(
        "--output", default="bench-report.json", help="where to write the JSON report"
    )
    bench.add_argument(
        "--profile", metavar="DIR", help="also profile the collector and worker with py-spy"
    )
    bench.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (logs, data)"
    )
    bench.add_argument(
        "--config",
        metavar="FILE",
        help="the product config (meters, features, activation rules) the worker runs"
        " (schemas/usage-stream.example.toml)",
    )
    bench.add_argument(
        "--history",
        type=int,
        default=0,
        metavar="N",
        help="also run the worker alone on tables already holding N stored events (generated"
        " inside ClickHouse, about 3 s per million) and report its rate beside the empty-table"
        " rate (0: skip)",
    )
    bench.set_defaults(func=cmd_bench)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    from clickhouse_connect.driver.exceptions import OperationalError

    try:
        result: int = args.func(args)
    except NoClickHouse as exc:
        raise SystemExit(str(exc)) from None
    except OperationalError as exc:  # nothing answers where ClickHouse should be
        settings = settings_in_force()
        hint = "" if settings.clickhouse_url else ": start it with `usage-stream clickhouse start`"
        answer = f"ClickHouse at {settings.clickhouse_dsn} does not answer{hint}\n{exc}"
        raise SystemExit(answer) from None
    return result


if __name__ == "__main__":
    sys.exit(main())
