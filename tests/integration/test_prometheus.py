"""A real Prometheus server scrapes a real collector and worker while events flow through them."""

from __future__ import annotations

import shutil
import signal
import subprocess
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from processors.worker.lag import ConsumerLagProbe
from runtime.topics import ensure_topics
from tests.conftest import Corner
from tests.harness import Service, basic, http, wait_until
from usage_stream.broker import LocalBroker
from usage_stream.up import free_port

pytestmark = pytest.mark.integration

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
C = "usage_stream_collector"
W = "usage_stream_worker"


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[dict[str, Any]]:
        status, body = http(
            "GET", f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        )
        assert status == 200 and body["status"] == "success", body
        return list(body["data"]["result"])

    def scalar(self, promql: str) -> float:
        """The value of a query that yields one series; 0 when it yields none yet."""
        result = self.query(promql)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else 0.0


@pytest.fixture
def prometheus(tmp_path: Path, collector: Service, worker: Service) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(
            "prometheus is missing: deploy/setup.sh installs it (Debian package prometheus)"
        )
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {"job_name": "usage-stream-collector",
             "static_configs": [{"targets": [f"127.0.0.1:{collector.port}"]}]},
            {"job_name": "usage-stream-worker",
             "static_configs": [{"targets": [f"127.0.0.1:{worker.port}"]}]},
        ],
    }  # fmt: skip
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                return http("GET", f"{url}/-/ready")[0] == 200
            except OSError:
                return False

        wait_until(ready, timeout=60, interval=0.5)
        yield Prometheus(url)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def batch(count: int) -> list[dict[str, Any]]:
    return [
        {"type": "track", "messageId": str(uuid.uuid4()), "userId": f"user-{i}",
         "groupId": f"acct-{i % 7}", "event": "api_call", "properties": {"status": 200}}
        for i in range(count)
    ]  # fmt: skip


def send(collector: Service, corner: Corner, events: list[dict[str, Any]]) -> None:
    status, body = http(
        "POST", f"{collector.url}/v1/batch", {"batch": events}, basic(corner.write_key)
    )
    assert status == 200, body


KEY_SERIES = {
    "received": f'sum({C}_events_received_total{{tenant="acme"}})',
    "accepted": f'sum({C}_events_accepted_total{{tenant="acme"}})',
    "requests": f'sum({C}_request_duration_seconds_count{{endpoint="/v1/batch"}})',
    "produced": f"sum({C}_kafka_produce_duration_seconds_count)",
    "stored": f'sum({W}_events_processed_total{{processor="raw"}})',
    "fresh": f"sum({W}_freshness_seconds_count)",
    "rows": f'sum({W}_clickhouse_inserted_rows_total{{table="events"}})',
    "inserts": f'sum({W}_clickhouse_inserts_total{{table="events"}})',
    "batches": f"sum({W}_batches_total)",
}
PER_EVENT = ("received", "accepted", "stored", "fresh", "rows")


@pytest.mark.timeout(480)
def test_prometheus_sees_the_key_series_move_while_events_flow(
    corner: Corner, collector: Service, worker: Service, prometheus: Prometheus
) -> None:
    topic = corner.env["USAGE_STREAM_EVENTS_TOPIC"]
    # both processes are scraped, with the alerting rules loaded beside them
    wait_until(
        lambda: len(prometheus.query('up{job=~"usage-stream-(collector|worker)"} == 1')) == 2,
        timeout=60,
    )
    # the worker reports the group's lag on every partition of its topic (3 in the tests)
    lag = f'{W}_consumer_lag_messages{{topic="{topic}"}}'
    wait_until(lambda: len(prometheus.query(lag)) == 3, timeout=60)

    before = {name: prometheus.scalar(q) for name, q in KEY_SERIES.items()}
    first = batch(20)
    send(collector, corner, first)

    def grew_by(start: dict[str, float], events: int) -> dict[str, float] | None:
        now = {name: prometheus.scalar(q) for name, q in KEY_SERIES.items()}
        moved = all(now[n] >= start[n] + events for n in PER_EVENT) and all(
            now[n] > start[n] for n in KEY_SERIES
        )
        return now if moved else None

    after_first = wait_until(lambda: grew_by(before, 20), timeout=90, interval=1)
    second = batch(30)
    send(collector, corner, second[:15])
    send(collector, corner, second[15:])
    after_second = wait_until(lambda: grew_by(after_first, 30), timeout=90, interval=1)
    assert after_second["requests"] >= after_first["requests"] + 2

    # every processor the worker runs counted every stored event
    processed = prometheus.query(f"{W}_events_processed_total")
    assert {s["metric"]["processor"] for s in processed} >= {"raw"}
    assert all(float(s["value"][1]) >= 50 for s in processed), processed

    # a re-sent batch is dropped by the dedup check, and Prometheus sees the hits
    send(collector, corner, first)
    wait_until(lambda: prometheus.scalar(f"sum({W}_duplicates_total)") >= 20, timeout=90)

    # once everything is committed, the lag is back to zero on every partition
    wait_until(
        lambda: len(prometheus.query(lag)) == 3 and prometheus.scalar(f"sum({lag})") == 0,
        timeout=90,
        interval=1,
    )
    # the freshness quantile the alert and the dashboard compute exists (a number, not NaN)
    p95 = f"histogram_quantile(0.95, sum by (le) ({W}_freshness_seconds_bucket))"
    assert prometheus.scalar(p95) >= 0

    # the alerting rules evaluate without errors against the real series
    def rules_healthy() -> list[dict[str, Any]] | None:
        _, body = http("GET", f"{prometheus.url}/api/v1/rules")
        rules = [r for g in body["data"]["groups"] for r in g["rules"]]
        return rules if rules and all(r["health"] == "ok" for r in rules) else None

    rules = wait_until(rules_healthy, timeout=60, interval=1)
    assert {r["name"] for r in rules} >= {"UsageStreamConsumerLagGrowing", "UsageStreamDeadLetters"}
    firing = {r["name"] for r in rules if r["state"] == "firing"}
    assert firing.isdisjoint({"UsageStreamTargetDown", "UsageStreamBatchesFailing"}), firing


def test_the_lag_probe_reads_the_groups_lag_from_the_broker(kafka: LocalBroker) -> None:
    topic, group = f"lag-{uuid.uuid4().hex[:8]}", f"lag-group-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka.bootstrap, [topic], 2)
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    for partition, count in ((0, 5), (1, 3)):
        for i in range(count):
            producer.send(topic, value=f"{i}".encode(), partition=partition)
    producer.flush()
    producer.close()

    readings: list[dict[tuple[str, int], int] | None] = []
    probe = ConsumerLagProbe(kafka.bootstrap, group, [topic], readings.append, interval=0.5)

    def reading() -> dict[tuple[str, int], int] | None:
        probe.probe()  # a fresh broker answers once its offsets topic exists
        return readings[-1]

    assert wait_until(reading, timeout=60) == {(topic, 0): 5, (topic, 1): 3}  # none committed
    assert probe.reachable

    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=group)
    consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(2, "", -1)})
    consumer.close()
    probe.start()
    wait_until(lambda: readings[-1] == {(topic, 0): 3, (topic, 1): 3}, timeout=30)
    probe.stop()

    dead = ConsumerLagProbe(f"127.0.0.1:{free_port()}", group, [topic], readings.append)
    dead.probe()
    assert readings[-1] is None and not dead.reachable
