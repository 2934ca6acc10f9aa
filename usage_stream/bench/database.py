"""Where a bench tool keeps its tables: --dsn and --database on its command line, a server's
password in the environment (a command line is readable by anyone running `ps`)."""

from __future__ import annotations

import argparse
import os

# The variable the worker reads its server's password from (schemas.settings): one name for all.
PASSWORD_VARIABLE = "USAGE_STREAM_CLICKHOUSE_PASSWORD"


def add_arguments(parser: argparse.ArgumentParser, database: str) -> None:
    parser.add_argument(
        "--dsn",
        required=True,
        help=f"http(s)://user@host:port of a ClickHouse server (password in ${PASSWORD_VARIABLE})",
    )
    parser.add_argument("--database", default=database, help=f"a database of its own ({database})")


def password() -> str:
    return os.environ.get(PASSWORD_VARIABLE, "")
