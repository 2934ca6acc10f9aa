"""`usage-stream backfill` and `usage-stream reconcile`: meters recomputed from raw events."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from processors.storage.clickhouse import ClickHouse, open_clickhouse
from schemas.config import EXAMPLE_CONFIG, ConfigError, ProductConfig, load_config
from schemas.settings import Settings
from usage_stream.progress import ProgressBar


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date or time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def add_range_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="start", type=_moment, required=True,
                        help="inclusive, ISO 8601 (UTC unless an offset is given)")  # fmt: skip
    parser.add_argument("--to", type=_moment, required=True, help="exclusive, ISO 8601")
    parser.add_argument("--tenant", help="only this tenant (default: all)")
    parser.add_argument(
        "--meter", action="append", help="only this meter (repeatable; default: all)"
    )


def _open(settings: Settings) -> ClickHouse:
    try:
        return open_clickhouse(
            settings.clickhouse_dsn,
            settings.clickhouse_database,
            settings.clickhouse_secret(),
        )
    except ValueError as exc:  # a URL it refuses (chdb://, or not http(s)://): said plainly
        raise SystemExit(str(exc)) from None


def _config(settings: Settings, meters: list[str] | None) -> ProductConfig:
    """The meters to recompute: of USAGE_STREAM_CONFIG_FILE, or of the example configuration
    `usage-stream up` runs with when none is set."""
    try:
        config = load_config(settings.config_file or EXAMPLE_CONFIG)
    except ConfigError as exc:
        raise SystemExit(exc.report()) from None
    if not config.meters:
        raise SystemExit(f"no meters in {settings.config_file}: define some first")
    if meters:
        unknown = sorted(set(meters) - {m.name for m in config.meters})
        if unknown:
            known = ", ".join(m.name for m in config.meters)
            raise SystemExit(f"unknown meter(s): {', '.join(unknown)}; the meters are: {known}")
        config = config.model_copy(
            update={"meters": [m for m in config.meters if m.name in meters]}
        )
    return config


def _forward(args: argparse.Namespace) -> None:
    if args.start >= args.to:
        raise SystemExit(
            f"--from {args.start.isoformat()} is not before --to {args.to.isoformat()}:"
            " give the range [from, to) in that order"
        )


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    _forward(args)
    config = _config(settings, args.meter)
    clickhouse = _open(settings)
    from processors.metering.recompute import backfill

    written = backfill(
        clickhouse, config, args.start, args.to, args.tenant, ProgressBar("backfill")
    )
    names = ", ".join(m.name for m in config.meters)
    print(f"backfilled {names} from {args.start:%Y-%m-%d %H:%M} to {args.to:%Y-%m-%d %H:%M}"
          f" UTC: {written} per-minute rows")  # fmt: skip
    return 0


def cmd_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    _forward(args)
    config = _config(settings, args.meter)
    clickhouse = _open(settings)
    from processors.metering.recompute import reconcile

    differences = reconcile(
        clickhouse, config, args.start, args.to, args.tenant, ProgressBar("reconcile")
    )
    for difference in differences[: args.show]:
        print(difference.describe())
    if len(differences) > args.show:
        print(f"… and {len(differences) - args.show} more")
    if differences:
        print(f"{len(differences)} difference(s) between stored and recomputed quantities")
        return 1
    print("stored quantities equal a recomputation from the raw events")
    return 0
