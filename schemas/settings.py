"""All configuration: environment variables prefixed USAGE_STREAM_, validated once, frozen."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The collector's producer linger. 20 ms made its sink alone cheaper (24 µs per event against
# 29-35) but not the collector (57.5 against 57-60 µs) and took request p99 at half load from
# 21-27 ms to 42 (docs/performance.md): 5 stays.
DEFAULT_LINGER_MS = 5


# The user clients of the local server log in as (usage_stream.clickhouse_server)
LOCAL_CLICKHOUSE_USER = "usage_stream"


class NoClickHouse(RuntimeError):
    """Nothing says which ClickHouse to use: no URL and no local server."""


class Settings(BaseSettings):
    """Defaults run everything on this machine: Kafka on 127.0.0.1:9092, the local ClickHouse
    server (chDB) under data_dir."""

    model_config = SettingsConfigDict(env_prefix="USAGE_STREAM_", frozen=True, extra="forbid")

    data_dir: Path = Field(
        default=Path(".usage-stream"),
        description="Local state: the local ClickHouse server, the local Kafka broker, logs,"
        " pid files.",
    )

    config_file: Path | None = Field(
        default=None,
        description="TOML file with meters and activation rules"
        " (see schemas/usage-stream.example.toml).",
    )

    # Kafka
    kafka_bootstrap: str = Field(default="127.0.0.1:9092", description="host:port[,host:port]")
    events_topic: str = "events"
    invalid_topic: str = "events.invalid"
    activations_topic: str = Field(
        default="activations",
        description="activation outcomes (compacted, partitioned like the events topic)",
    )
    health_topic: str = Field(
        default="account_health",
        description="accounts whose health score crossed the threshold (compacted, by account)",
    )
    alerts_topic: str = Field(
        default="usage_alerts",
        description="plan thresholds crossed and tiers changed (compacted, by tenant:account)",
    )
    topic_partitions: int = Field(default=6, ge=1, le=1024)
    produce_timeout_seconds: float = Field(default=10.0, gt=0)
    # zstd: it costs the collector ~8 µs per event and saves the worker ~35 (docs/performance.md);
    # consumers read any
    kafka_compression: Literal["none", "gzip", "lz4", "zstd"] = Field(
        default="zstd",
        description="how the collector compresses what it produces; consumers read any",
    )
    kafka_linger_ms: int = Field(
        default=DEFAULT_LINGER_MS,
        ge=0,
        le=1000,
        description="how long the collector's producer gathers records before sending them",
    )

    # ClickHouse
    clickhouse_url: str = Field(
        default="",
        description="http(s)://user@host:port of a ClickHouse server (with"
        " clickhouse_password). Empty means the local server `usage-stream clickhouse start`"
        " runs in <data_dir>/clickhouse-server, with the password it keeps there.",
    )
    clickhouse_password: SecretStr = SecretStr("")
    clickhouse_database: str = Field(default="usage_stream", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # ClickHouse's own default ports: a client or tool set up for a local ClickHouse finds it
    clickhouse_http_port: int = Field(
        default=8123,
        ge=1,
        le=65535,
        description="HTTP port of the local server `usage-stream clickhouse start` runs",
    )
    clickhouse_tcp_port: int = Field(
        default=9000,
        ge=1,
        le=65535,
        description="native-protocol port of that server",
    )

    # Tenants and their keys: {"acme": "wk_..."}; a write key maps to exactly one tenant.
    write_keys: dict[str, SecretStr] = Field(default_factory=dict)
    read_keys: dict[str, SecretStr] = Field(default_factory=dict)

    # Collector
    collector_host: str = "127.0.0.1"
    collector_port: int = Field(default=8080, ge=0, le=65535)
    collector_processes: int = Field(
        default=0,
        ge=0,
        le=256,
        description="collector processes answering on the port; 0: one per core",
    )
    max_body_bytes: int = Field(default=512 * 1024, ge=1024)
    max_batch_events: int = Field(default=2000, ge=1, description="events in one request")
    max_event_bytes: int = Field(default=32 * 1024, ge=256, description="one event, as JSON")
    max_future_seconds: float = Field(
        default=3600, ge=0, description="event times further ahead are clamped to receivedAt"
    )
    rate_limit_events_per_second: float = Field(
        default=5000, ge=0, description="per write key and collector process; 0 turns it off"
    )
    rate_limit_burst: int = Field(default=20000, ge=1, description="events above the rate")

    # Worker
    worker_host: str = "127.0.0.1"
    worker_port: int = Field(default=8081, ge=0, le=65535)
    webhooks_host: str = "127.0.0.1"
    webhooks_port: int = Field(
        default=8082, ge=0, le=65535, description="the webhook sender's /metrics and /readyz"
    )
    consumer_group: str = "usage-stream"
    # up to 10,000 events a batch: per-batch costs (marks, inserts, parts) dominate below that;
    # at low load the batch window (sink_batch_seconds) still sends each one within 0.25 s
    sink_batch_size: int = Field(default=10_000, ge=1)
    sink_batch_seconds: float = Field(default=0.25, gt=0)
    dedup_horizon_days: int = Field(default=35, ge=1)
    # The slack in the worker's `complete_through` (processors.worker_progress): an event the
    # collector received at r is in Kafka by r + this. The collector's produce timeout (above;
    # its producer gives up a second after it) plus how far the hosts' clocks may differ.
    receipt_slack_seconds: float = Field(
        default=30.0,
        gt=0,
        description="how long after receivedAt an event may still reach Kafka: the collectors'"
        " produce timeout plus the clock difference between hosts",
    )

    # Webhooks: a failed delivery is tried again after a jittered delay of up to base·2^n
    # seconds (capped), for as long as its endpoint's `retry_for`
    webhooks_backoff_base_seconds: float = Field(default=2.0, gt=0, le=3600)
    webhooks_backoff_cap_seconds: float = Field(default=1800.0, gt=0, le=86400)

    @field_validator("write_keys", "read_keys")
    @classmethod
    def _keys_unique(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        values = [k.get_secret_value() for k in keys.values()]
        if any(not v for v in values):
            raise ValueError("keys must not be empty")
        if len(set(values)) != len(values):
            raise ValueError("the same key is given to two tenants")
        return keys

    @model_validator(mode="after")
    def _event_fits_in_a_body(self) -> Settings:
        if self.max_event_bytes > self.max_body_bytes:
            raise ValueError("max_event_bytes must not exceed max_body_bytes")
        return self

    @model_validator(mode="after")
    def _write_and_read_keys_differ(self) -> Settings:
        write = {k.get_secret_value() for k in self.write_keys.values()}
        if write & {k.get_secret_value() for k in self.read_keys.values()}:
            raise ValueError("a read key must not also be a write key")
        return self

    @property
    def webhooks_group(self) -> str:
        """The webhook sender's consumer group of `alerts_topic`: its own, beside the worker's."""
        return f"{self.consumer_group}.webhooks"

    @property
    def local_clickhouse_dir(self) -> Path:
        """Where the local server keeps its data, credentials and log."""
        return self.data_dir / "clickhouse-server"

    @property
    def clickhouse_dsn(self) -> str:
        local = f"http://{LOCAL_CLICKHOUSE_USER}@127.0.0.1:{self.clickhouse_http_port}"
        return self.clickhouse_url or local

    def clickhouse_secret(self) -> str:
        """The password for `clickhouse_dsn`: `clickhouse_password`, or for the local server
        the one it generated and keeps in its directory."""
        if self.clickhouse_url:
            return self.clickhouse_password.get_secret_value()
        path = self.local_clickhouse_dir / "credentials.json"
        try:
            return str(json.loads(path.read_text())["password"])
        except (OSError, ValueError, KeyError):
            raise NoClickHouse(
                f"no local ClickHouse server in {self.local_clickhouse_dir}: start one with"
                " `usage-stream clickhouse start` (or `usage-stream up`), or set"
                " USAGE_STREAM_CLICKHOUSE_URL and USAGE_STREAM_CLICKHOUSE_PASSWORD"
            ) from None

    def tenant_for_write_key(self) -> dict[str, str]:
        """Write key → tenant, the collector's lookup table."""
        return {key.get_secret_value(): tenant for tenant, key in self.write_keys.items()}

    def tenant_for_read_key(self) -> dict[str, str]:
        return {key.get_secret_value(): tenant for tenant, key in self.read_keys.items()}

    def masked(self) -> dict[str, Any]:
        """A dump safe to print or log: secrets appear as '**********'."""
        return self.model_dump(mode="json")
