"""The replicated-cluster DDL: valid ClickHouse SQL, and the same tables as the migrations."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from schemas.migrations import MIGRATIONS_DIR, load_migrations

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "clickhouse"
CLUSTER = DEPLOY / "cluster"

# Run in a child process: chDB allows one data directory per process, and the test session
# may already have opened another one. The child prints what the engine made of both schemas.
ENGINE_REPORT = r"""
import json, re, sys
from chdb import session

from processors.storage.clickhouse import _MIGRATIONS_TABLE
from schemas.migrations import _statements, load_migrations

cluster_files = json.loads(sys.argv[1])
s = session.Session()
report = {"parse_errors": [], "columns": {}, "keys": {}, "projections": {}, "settings": {}}

def rows(sql):
    return [json.loads(line) for line in s.query(sql, "JSONEachRow").bytes().decode().splitlines()]

def local(statement):
    statement = statement.replace(" ON CLUSTER '{cluster}'", "")
    # ReplicatedXMergeTree('path', 'replica'[, args]) -> XMergeTree([args])
    return re.sub(r"Replicated(\w*)MergeTree\('[^']*', '[^']*'(?:, )?", r"\1MergeTree(", statement)

s.query("CREATE DATABASE single")
s.query("USE single")
s.query(_MIGRATIONS_TABLE)
for migration in load_migrations():
    for statement in migration.statements:
        s.query(statement)

s.query("CREATE DATABASE cluster")
s.query("USE cluster")
for path in cluster_files:
    for statement in _statements(open(path).read()):
        try:
            quoted = statement.replace("\\", "\\\\").replace("'", "\\'")
            s.query(f"SELECT formatQuery('{quoted}')")
        except Exception as exc:
            report["parse_errors"].append(f"{path}: {str(exc)[:300]}")
            continue
        # Distributed tables (made, or altered like their shard-local table) need a cluster
        distributed = re.match(r"(?:--[^\n]*\n)*ALTER TABLE (?!\w+_local )", statement)
        if "ENGINE = Distributed" not in statement and not distributed:
            s.query(local(statement))

for db in ("single", "cluster"):
    report["columns"][db] = rows(
        "SELECT table, name, type, default_kind, default_expression, compression_codec"
        f" FROM system.columns WHERE database = '{db}' ORDER BY table, position"
    )
    report["keys"][db] = rows(
        "SELECT name, engine, sorting_key, partition_key, primary_key"
        f" FROM system.tables WHERE database = '{db}' ORDER BY name"
    )
    report["projections"][db] = rows(
        "SELECT table, name, query FROM system.projections"
        f" WHERE database = '{db}' ORDER BY table, name"
    )
report["migrations"] = rows("SELECT version, name FROM cluster.schema_migrations ORDER BY version")
report["settings"] = [r["name"] for r in rows("SELECT name FROM system.settings")]
s.cleanup()
print(json.dumps(report))
"""


def cluster_files() -> list[Path]:
    return sorted(CLUSTER.glob("*.sql"))


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", ENGINE_REPORT, json.dumps([str(p) for p in cluster_files()])],
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.splitlines()[-1]))


def by_table(rows: list[dict[str, Any]], key: str = "table") -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row[key], []).append({k: v for k, v in row.items() if k != key})
    return grouped


def test_every_migration_has_a_cluster_variant() -> None:
    single = {p.name for p in MIGRATIONS_DIR.glob("*.sql")}
    cluster = {p.name for p in cluster_files()} - {"0000_schema_migrations.sql"}
    assert cluster == single


def test_cluster_ddl_is_valid_clickhouse_sql(report: dict[str, Any]) -> None:
    assert report["parse_errors"] == []


def test_cluster_tables_match_the_migrations(report: dict[str, Any]) -> None:
    """Each table `t` of the migrations is `t_local` on the cluster: same columns (types,
    defaults, codecs), same ORDER BY and PARTITION BY, same projections."""
    single_columns = by_table(report["columns"]["single"])
    cluster_columns = by_table(report["columns"]["cluster"])
    single_keys = {r["name"]: r for r in report["keys"]["single"]}
    cluster_keys = {r["name"]: r for r in report["keys"]["cluster"]}
    single_projections = by_table(report["projections"]["single"])
    cluster_projections = by_table(report["projections"]["cluster"])
    tables = set(single_keys) - {"schema_migrations"}
    assert tables, "no tables in the migrations"
    for table in tables:
        local = f"{table}_local"
        assert cluster_columns[local] == single_columns[table], table
        for key in ("sorting_key", "partition_key", "primary_key"):
            assert cluster_keys[local][key] == single_keys[table][key], (table, key)
        assert cluster_projections.get(local) == single_projections.get(table), table
    assert cluster_columns["schema_migrations"] == single_columns["schema_migrations"]


def test_each_table_is_read_and_written_through_a_distributed_table() -> None:
    text = "\n".join(p.read_text() for p in cluster_files())
    tables = {
        m.group(1)
        for p in MIGRATIONS_DIR.glob("*.sql")
        for m in re.finditer(r"CREATE TABLE IF NOT EXISTS (\w+)", p.read_text())
    }
    for table in tables:
        distributed = re.search(
            rf"CREATE TABLE IF NOT EXISTS {table} ON CLUSTER '{{cluster}}' AS {table}_local\s+"
            rf"ENGINE = Distributed\('{{cluster}}', currentDatabase\(\), {table}_local, (.+)\);",
            text,
        )
        assert distributed, table
        local = re.search(
            rf"CREATE TABLE IF NOT EXISTS {table}_local ON CLUSTER '{{cluster}}'.*?"
            rf"ENGINE = Replicated(?:Replacing)?MergeTree\("
            rf"'/clickhouse/tables/{{shard}}/{{database}}/{table}_local', '{{replica}}'[,)]",
            text,
            flags=re.DOTALL,
        )
        assert local, table


def test_tables_marked_with_kafka_offsets_are_sharded_by_partition_only(
    report: dict[str, Any],
) -> None:
    """A batch's rows of one partition carry that partition's mark: they must land in one
    insert on one shard, or a half-written batch would look fully counted."""
    marked = {
        row["table"].removesuffix("_local")
        for row in report["columns"]["cluster"]
        if row["name"] == "kafka_next_offset"
    }
    text = "\n".join(p.read_text() for p in cluster_files())
    for table in marked:
        assert re.search(rf"Distributed\([^;]*{table}_local, kafka_partition\);", text), table


def test_applying_the_cluster_ddl_records_every_migration(report: dict[str, Any]) -> None:
    """So `usage-stream migrate` and starting workers find nothing left to apply."""
    expected = [{"version": m.version, "name": m.name} for m in load_migrations()]
    assert report["migrations"] == expected


def test_the_worker_profile_names_real_settings(report: dict[str, Any]) -> None:
    profile = ElementTree.parse(DEPLOY / "users.d" / "usage-stream.xml").getroot()
    settings = {e.tag: e.text for e in profile.findall("./profiles/usage_stream/*")}
    assert settings["distributed_foreground_insert"] == "1"
    assert int(settings["insert_quorum"] or 0) >= 2
    assert set(settings) <= set(report["settings"])


def test_the_example_cluster_replicates_internally() -> None:
    config = ElementTree.parse(DEPLOY / "config.d" / "cluster.example.xml").getroot()
    cluster = config.find("./macros/cluster")
    assert cluster is not None and cluster.text
    shards = config.findall(f"./remote_servers/{cluster.text}/shard")
    assert len(shards) >= 2
    for shard in shards:
        assert shard.findtext("internal_replication") == "true"
        assert len(shard.findall("replica")) >= 2
