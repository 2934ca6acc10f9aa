"""Usage alerts as signed webhooks, end to end on the real broker and ClickHouse: records
produced onto a test alerts topic, `usage-stream webhooks run` as a process, and receivers that
are processes too, verifying every signature with the Standard Webhooks library."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kafka import KafkaProducer

from processors.api.auth import read_key_tenant
from processors.api.webhooks import webhooks_router
from processors.storage.clickhouse import ClickHouse, open_clickhouse
from tests.conftest import Corner
from tests.harness import Service, bearer, http, wait_until
from usage_stream.clickhouse_server import LocalClickHouse
from usage_stream.up import free_port

pytestmark = pytest.mark.integration

SECRET = "whsec_" + base64.b64encode(b"usage-stream-webhook-tests-32byte").decode()
RECEIVER = Path(__file__).with_name("webhook_receiver.py")


@dataclass
class Receiver:
    """A receiver process; `answer(...)` changes what it answers from the next request on."""

    port: int
    log: Path
    control: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/usage"

    def answer(self, **how: Any) -> None:
        staged = self.control.with_suffix(".next")
        staged.write_text(json.dumps(how))
        staged.replace(self.control)  # the receiver never reads half a file

    def requests(self) -> list[dict[str, Any]]:
        """What it received, in order; a line still being written is not there yet."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines(keepends=True)
                if line.endswith("\n")]  # fmt: skip

    def delivered(self) -> dict[str, list[dict[str, Any]]]:
        """webhook-id → the requests answered 200."""
        out: dict[str, list[dict[str, Any]]] = {}
        for r in self.requests():
            if r["answered"] == 200:
                out.setdefault(r["id"], []).append(r)
        return out


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[Any]:
    started: list[Receiver] = []

    def start(name: str, **how: Any) -> Receiver:
        port = free_port()
        receiver = Receiver(
            port, tmp_path / f"{name}.jsonl", tmp_path / f"{name}.json",
            subprocess.Popen(
                [sys.executable, str(RECEIVER), str(port), SECRET, str(tmp_path / f"{name}.jsonl"),
                 str(tmp_path / f"{name}.json")],
                stdin=subprocess.DEVNULL,
            ),
        )  # fmt: skip
        receiver.answer(**(how or {"mode": "ok"}))
        started.append(receiver)
        wait_until(lambda: _pings(receiver), 10)
        return receiver

    try:
        yield start
    finally:
        for receiver in started:
            receiver.process.kill()
            receiver.process.wait()


def _pings(receiver: Receiver) -> bool:
    try:
        return http("GET", f"http://127.0.0.1:{receiver.port}/ping")[0] == 200
    except OSError:
        return False


@dataclass
class Alerts:
    """The test's alerts topic, the sender's environment and its delivery log."""

    corner: Corner
    env: dict[str, str]
    topic: str
    clickhouse: ClickHouse
    producer: KafkaProducer

    def configure(self, *webhooks: dict[str, Any]) -> None:
        lines = []
        for hook in webhooks:
            lines.append("[[webhooks]]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in {"secret": SECRET, **hook}.items()]
        path = self.corner.home / "webhooks.toml"
        path.write_text("\n".join(lines) + "\n")
        self.env["USAGE_STREAM_CONFIG_FILE"] = str(path)

    def sender(self) -> Service:
        port = free_port()
        env = {**self.env, "USAGE_STREAM_WEBHOOKS_PORT": str(port)}
        return Service("webhooks run", env, port, self.corner.home / "webhooks.log").start()

    def produce(self, tenant: str = "acme", kind: str = "fired", **fields: Any) -> dict[str, Any]:
        record = {
            "type": "usage_alert", "id": str(uuid.uuid4()), "kind": kind, "tenant": tenant,
            "account": "acct-1", "meter": "api_calls", "period": "2026-12", "threshold": "80%",
            "level": "800", "quantity": "812", "included": "1000", "plan": "team",
            "with_others": [], "tier_left": "", "tier_entered": "", "late": False,
            "at": "2026-12-08T01:02:03.456+00:00", **fields,
        }  # fmt: skip
        key = f"{tenant}:{record['account']}".encode()
        self.producer.send(self.topic, key=key, value=json.dumps(record).encode()).get(30)
        return record

    def status(self, record_id: str) -> dict[str, str]:
        """endpoint → the delivery's status, from its latest row."""
        rows = self.clickhouse.query(
            "SELECT endpoint, argMax(status, (attempt, written_at)) FROM webhook_deliveries"
            " WHERE record_id = {id:String} GROUP BY endpoint",
            {"id": record_id},
        )
        return dict(rows)

    def api(self) -> TestClient:
        """The deliveries route as the read API mounts it, over the same ClickHouse."""
        app = FastAPI()
        tenant_of = read_key_tenant({self.corner.read_key: self.corner.tenant})
        app.include_router(webhooks_router(self.clickhouse, tenant_of))
        return TestClient(app)


@pytest.fixture
def alerts(corner: Corner, clickhouse_server: LocalClickHouse) -> Iterator[Alerts]:
    topic = f"usage_alerts-{uuid.uuid4().hex[:10]}"
    env = {
        **corner.env,
        "USAGE_STREAM_ALERTS_TOPIC": topic,
        # short backoff, so retries are seconds apart, not minutes
        "USAGE_STREAM_WEBHOOKS_BACKOFF_BASE_SECONDS": "0.05",
        "USAGE_STREAM_WEBHOOKS_BACKOFF_CAP_SECONDS": "0.3",
    }
    database = env["USAGE_STREAM_CLICKHOUSE_DATABASE"]
    clickhouse = open_clickhouse(clickhouse_server.dsn, database, clickhouse_server.password)
    producer = KafkaProducer(
        bootstrap_servers=corner.env["USAGE_STREAM_KAFKA_BOOTSTRAP"], acks="all"
    )
    try:
        yield Alerts(corner, env, topic, clickhouse, producer)
    finally:
        producer.close(5)
        clickhouse.command(f"DROP DATABASE IF EXISTS {database}")


def test_alerts_are_delivered_signed_to_the_endpoints_that_want_them(
    alerts: Alerts, receivers: Any
) -> None:
    everything, fired_only = receivers("everything"), receivers("fired-only")
    alerts.configure(
        {"tenant": "acme", "url": everything.url},
        {"tenant": "acme", "name": "pager", "url": fired_only.url, "types": ["fired"]},
        {"tenant": "other", "url": everything.url + "?token=secret-token"},
    )
    sender = alerts.sender()
    try:
        fired = alerts.produce(kind="fired")
        resolved = alerts.produce(kind="resolved", threshold="80%")
        theirs = alerts.produce(tenant="other", kind="tier_changed", threshold="",
                                tier_left="starter", tier_entered="pro")  # fmt: skip
        ids = {fired["id"], resolved["id"], theirs["id"]}
        wait_until(lambda: set(everything.delivered()) == ids, 15)
        wait_until(lambda: set(fired_only.delivered()) == {fired["id"]}, 15)
        for receiver in (everything, fired_only):
            for request in receiver.requests():
                assert request["verified"], request
                assert request["content_type"] == "application/json"
                sent = next(r for r in (fired, resolved, theirs) if r["id"] == request["id"])
                assert json.loads(request["body"]) == sent  # the record itself, as produced
        # at least once: a request retried (a slow answer on a loaded machine) has the same id
        assert {r["id"] for r in everything.requests()} == ids
        assert {r["id"] for r in fired_only.requests()} == {fired["id"]}
        assert alerts.status(fired["id"]) == {"0": "delivered", "pager": "delivered"}
        assert alerts.status(theirs["id"]) == {"2": "delivered"}
        # the log keeps no token of a URL's query string
        (url,) = alerts.clickhouse.query(
            "SELECT DISTINCT url FROM webhook_deliveries WHERE endpoint = '2'"
        )[0]
        assert "secret-token" not in url and url.endswith("/hooks/usage")

        listed = alerts.api().get(
            "/v1/webhooks/deliveries?status=delivered", headers=bearer(alerts.corner.read_key)
        )
        assert listed.status_code == 200, listed.text
        shown = {(d["id"], d["endpoint"]) for d in listed.json()["deliveries"]}
        assert shown == {(fired["id"], "0"), (fired["id"], "pager"), (resolved["id"], "0")}
        metrics = http("GET", f"{sender.url}/metrics")[1]
        assert (
            'usage_stream_webhooks_deliveries_total{endpoint="0",outcome="delivered"} 2.0'
            in metrics
        )
        assert 'usage_stream_webhooks_records_total{outcome="queued"} 3.0' in metrics
    finally:
        sender.stop()


def test_a_failed_answer_is_retried_with_the_same_id_and_delivered_once(
    alerts: Alerts, receivers: Any
) -> None:
    """500 then 200; and 429 with Retry-After: 1, which holds the retry back a second though
    the backoff alone would retry within a tenth of one."""
    flaky = receivers("flaky", mode="fail_first", times=1, status=500)
    busy = receivers("busy", mode="fail_first", times=1, status=429, retry_after="1")
    alerts.configure({"tenant": "acme", "url": flaky.url}, {"tenant": "acme", "url": busy.url})
    sender = alerts.sender()
    try:
        record = alerts.produce()
        for receiver in (flaky, busy):
            wait_until(lambda r=receiver: record["id"] in r.delivered(), 15)
        time.sleep(0.5)  # nothing more comes
        for receiver, refusal in ((flaky, 500), (busy, 429)):
            requests = receiver.requests()
            assert [r["answered"] for r in requests] == [refusal, 200]
            assert {r["id"] for r in requests} == {record["id"]}
            assert all(r["verified"] for r in requests)
            assert len({r["body"] for r in requests}) == 1
        first, second = busy.requests()
        assert second["at"] - first["at"] >= 1.0
        attempts = alerts.clickhouse.query(
            "SELECT endpoint, attempt, status, status_code FROM webhook_deliveries"
            " ORDER BY endpoint, attempt"
        )
        assert attempts == [
            ("0", 0, "pending", 0), ("0", 1, "pending", 500), ("0", 2, "delivered", 200),
            ("1", 0, "pending", 0), ("1", 1, "pending", 429), ("1", 2, "delivered", 200),
        ]  # fmt: skip
    finally:
        sender.stop()


def test_an_endpoint_that_never_answers_fails_is_listed_and_is_resent_with_the_same_id(
    alerts: Alerts, receivers: Any
) -> None:
    silent = receivers("silent", mode="hang", seconds=30)
    alerts.configure(
        {"tenant": "acme", "name": "crm", "url": silent.url, "retry_for": "PT2S",
         "timeout_seconds": 0.5}
    )  # fmt: skip
    sender = alerts.sender()
    try:
        record = alerts.produce()
        wait_until(lambda: alerts.status(record["id"]) == {"crm": "failed"}, 20)
        listed = alerts.api().get(
            "/v1/webhooks/deliveries?status=failed&limit=10", headers=bearer(alerts.corner.read_key)
        )
        assert listed.status_code == 200, listed.text
        (failed,) = listed.json()["deliveries"]
        assert (failed["id"], failed["endpoint"], failed["status"]) == (
            record["id"],
            "crm",
            "failed",
        )
        tries = failed["attempts"][1:]
        assert len(tries) >= 2, failed  # tried again within retry_for before giving up
        assert all(t["status_code"] is None for t in tries)
        assert all(t["error"] == "no answer within 0.5 s" for t in tries)
        assert tries[-1]["status"] == "failed" and failed["next_attempt_at"] is None
        assert len(silent.requests()) == len(tries)
        metrics = http("GET", f"{sender.url}/metrics")[1]
        assert (
            'usage_stream_webhooks_deliveries_total{endpoint="crm",outcome="failed"} 1.0' in metrics
        )
        pending = alerts.api().get(
            "/v1/webhooks/deliveries?status=pending", headers=bearer(alerts.corner.read_key)
        )
        assert pending.json() == {"deliveries": []}
        assert alerts.api().get("/v1/webhooks/deliveries").status_code == 401

        silent.answer(mode="ok")
        done = subprocess.run(
            [sys.executable, "-m", "usage_stream.cli", "webhooks", "resend", record["id"]],
            env={**os.environ, **alerts.env}, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"record {record['id']}:" in done.stdout
        assert (
            "endpoint crm (http://127.0.0.1:" in done.stdout
            and "delivered: HTTP 200" in done.stdout
        )
        (resent,) = silent.delivered()[record["id"]]
        assert resent["verified"] and json.loads(resent["body"]) == record
        assert alerts.status(record["id"]) == {"crm": "delivered"}

        missing = subprocess.run(
            [sys.executable, "-m", "usage_stream.cli", "webhooks", "resend", "no-such-id"],
            env={**os.environ, **alerts.env}, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        assert missing.returncode == 1 and "no delivery of record 'no-such-id'" in missing.stderr
    finally:
        sender.stop()


def test_a_sender_killed_mid_retry_loses_nothing_and_repeats_only_the_same_ids(
    alerts: Alerts, receivers: Any
) -> None:
    down = receivers("down", mode="fail", status=503)
    alerts.configure({"tenant": "acme", "url": down.url})
    sender = alerts.sender()
    before = [alerts.produce() for _ in range(5)]
    # every record tried and refused: their offsets committed, their deliveries only in the log
    wait_until(lambda: {r["id"] for r in down.requests()} == {r["id"] for r in before}, 15)
    sender.kill()
    during = [alerts.produce() for _ in range(5)]  # read by no one yet
    down.answer(mode="ok")
    sender = alerts.sender()
    try:
        records = {r["id"]: r for r in before + during}
        wait_until(lambda: set(down.delivered()) == set(records), 30)
        requests = down.requests()
        assert {r["id"] for r in requests} == set(records)  # nothing but these ids
        for request in requests:
            assert request["verified"], request
            assert json.loads(request["body"]) == records[request["id"]]
        for record_id in records:
            assert alerts.status(record_id) == {"0": "delivered"}
        tried_before = alerts.clickhouse.query(
            "SELECT record_id, max(attempt) FROM webhook_deliveries WHERE status = 'delivered'"
            " AND record_id IN {ids:Array(String)} GROUP BY record_id",
            {"ids": [r["id"] for r in before]},
        )
        assert all(attempt >= 2 for _, attempt in tried_before)  # resumed, counting on
    finally:
        sender.stop()


def test_a_dead_endpoint_does_not_delay_a_healthy_one(alerts: Alerts, receivers: Any) -> None:
    dead, healthy = receivers("dead", mode="hang", seconds=30), receivers("healthy")
    alerts.configure(
        {"tenant": "acme", "name": "dead", "url": dead.url, "timeout_seconds": 8},
        {"tenant": "acme", "name": "healthy", "url": healthy.url},
    )
    sender = alerts.sender()
    try:
        started = time.monotonic()
        records = [alerts.produce() for _ in range(5)]
        wait_until(lambda: set(healthy.delivered()) == {r["id"] for r in records}, 6)
        assert time.monotonic() - started < 6
        assert len(dead.requests()) == 1  # still waiting on its first answer
        statuses = [alerts.status(r["id"]) for r in records]
        assert all(s == {"dead": "pending", "healthy": "delivered"} for s in statuses)
    finally:
        sender.stop()
