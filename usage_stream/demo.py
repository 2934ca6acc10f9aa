"""A realistic stream of SaaS product events for several tenants, sent through the collector."""

from __future__ import annotations

import base64
import gzip
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from processors.windows import to_minute

# What a product's users do, with how often each happens on an active day.
FEATURES = {
    "report_created": 1.5,
    "dashboard_viewed": 4.0,
    "teammate_invited": 0.3,
    "export_csv": 0.6,
    "api_call": 12.0,
}
ENDPOINTS = ("/v1/search", "/v1/ingest", "/v1/reports", "/v1/users")

DEMO_TENANTS = ("acme", "globex", "initech")

# The webhook endpoints of the example configuration: a receiver `up` runs beside the demo
# (`usage-stream webhooks receive`), verifying signatures with this secret.
DEMO_WEBHOOK_SECRET = "whsec_dXNhZ2Utc3RyZWFtIGRlbW8gd2ViaG9vayBzZWNyZXQ="
WEBHOOK_RECEIVER_PORT = 8090


def received_path(data_dir: Path) -> Path:
    """Where the demo's receiver keeps what it received, as JSON lines."""
    return data_dir / "logs" / "webhooks-received.jsonl"


# Every demo event's messageId is a name in this namespace: the same demo, sent twice, is the
# same events twice, which the worker stores and counts once.
ID_NAMESPACE = uuid.UUID("5d3c6a1e-9a53-4f4e-8f38-0c1a5e7d2b10")
# The moment the demo's data ends, kept beside the data it was sent to, so a second run sends
# exactly the same events (same times, same ids) instead of a second copy.
ANCHOR_FILE = "demo-anchor"


def demo_keys() -> tuple[dict[str, str], dict[str, str]]:
    """Write and read keys for the demo tenants, used when none are configured."""
    return ({t: f"wk_demo_{t}" for t in DEMO_TENANTS}, {t: f"rk_demo_{t}" for t in DEMO_TENANTS})


@dataclass(frozen=True)
class Plan:
    accounts_per_tenant: int = 8
    users_per_account: int = 4
    days: int = 14
    seed: int = 7


def anchor(data_dir: Path | None) -> tuple[datetime, bool]:
    """When the demo's data ends, and whether a run before this one chose it: the time kept in
    `data_dir`, or this minute kept there for the next run. Without a directory, this minute."""
    now = to_minute(datetime.now(UTC))  # every demo event is before it: a range may end there
    if data_dir is None:
        return now, False
    path = data_dir / ANCHOR_FILE
    try:
        return datetime.fromisoformat(path.read_text().strip()), True
    except FileNotFoundError:
        pass
    except ValueError:
        print(f"{path} does not hold a time; starting the demo's data anew")
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(now.isoformat() + "\n")
    return now, False


def generate(tenant: str, plan: Plan, now: datetime) -> list[dict[str, Any]]:
    """Signups, then feature use and API calls over simulated days up to `now`; the same
    arguments give the same events, each with a messageId of its own."""
    rng = random.Random(f"{plan.seed}:{tenant}")
    start = now - timedelta(days=plan.days)
    events: list[dict[str, Any]] = []
    for a in range(plan.accounts_per_tenant):
        account = f"{tenant}-acct-{a:03d}"
        plan_name = rng.choice(("free", "team", "enterprise"))
        signup = start + timedelta(hours=rng.uniform(0, 24 * plan.days / 2))
        for u in range(rng.randint(1, plan.users_per_account)):
            user = f"{account}-user-{u}"
            joined = signup + timedelta(hours=rng.uniform(0, 48) if u else 0)
            events.append(_call("identify", user, account, joined, traits={"plan": plan_name}))
            # the plan trait of the group call (Segment's reserved trait) puts it on a plan
            traits = {"name": account, "plan": plan_name}
            events.append(_call("group", user, account, joined, traits=traits))
            events.append(_call("track", user, account, joined, event="signed_up"))
            events.extend(_seat(rng, user, account, joined, now))
            events.extend(_activity(rng, user, account, joined, now))
        events.extend(_storage_reports(rng, f"{account}-user-0", account, signup, now))
    events.sort(key=lambda e: e["timestamp"])
    for index, event in enumerate(events):
        name = f"{plan.seed}:{tenant}:{now.isoformat()}:{index}"
        event["messageId"] = str(uuid.uuid5(ID_NAMESPACE, name))
    return events


def _activity(
    rng: random.Random, user: str, account: str, joined: datetime, now: datetime
) -> list[dict[str, Any]]:
    out = []
    day = joined
    while day < now:
        if rng.random() < 0.6:  # active that day
            for name, rate in FEATURES.items():
                for _ in range(_poisson(rng, rate)):
                    when = day + timedelta(seconds=rng.uniform(0, 86400))
                    if when < now:
                        out.append(
                            _call(
                                "track",
                                user,
                                account,
                                when,
                                event=name,
                                properties=_properties(rng, name),
                            )
                        )
        day += timedelta(days=1)
    return out


def _seat(
    rng: random.Random, user: str, account: str, joined: datetime, now: datetime
) -> list[dict[str, Any]]:
    """A seat from the day a user joins; one user in five gives it back later: seat-days."""
    out = [_call("track", user, account, joined, event="seat_added")]
    left = joined + timedelta(days=rng.uniform(1, 10))
    if rng.random() < 0.2 and left < now:
        out.append(_call("track", user, account, left, event="seat_removed"))
    return out


def _storage_reports(
    rng: random.Random, user: str, account: str, signup: datetime, now: datetime
) -> list[dict[str, Any]]:
    """A daily storage reading per account, growing: what `latest` and GB-hours meters bill."""
    out, gb, day = [], rng.uniform(0.5, 5), signup
    while day < now:
        gb += rng.uniform(0, 1.5)
        props = {"gb": round(gb, 3)}
        out.append(_call("track", user, account, day, event="storage_reported", properties=props))
        day += timedelta(days=1)
    return out


def _poisson(rng: random.Random, rate: float) -> int:
    count, threshold, product = 0, pow(2.718281828, -rate), rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def _properties(rng: random.Random, name: str) -> dict[str, Any]:
    if name == "api_call":
        return {
            "endpoint": rng.choice(ENDPOINTS),
            "duration_ms": rng.randint(3, 900),
            "status": rng.choice((200, 200, 200, 201, 429, 500)),
        }
    if name == "export_csv":
        return {"rows": rng.randint(10, 50_000), "bytes": rng.randint(1_000, 9_000_000)}
    if name == "report_created":
        return {
            "template": rng.choice(("blank", "funnel", "retention")),
            "charts": rng.randint(1, 9),
        }
    return {}


def _call(kind: str, user: str, account: str, when: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "userId": user,
        "groupId": account,
        "timestamp": when.isoformat().replace("+00:00", "Z"),
        "context": {"library": {"name": "usage-stream-demo", "version": "1"}},
        **fields,
    }


def post_batch(collector_url: str, write_key: str, events: list[dict[str, Any]]) -> int:
    """POST one gzip batch, retrying 503 and network errors; returns how many were accepted."""
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    for attempt in range(8):
        body = {"batch": events, "sentAt": datetime.now(UTC).isoformat()}
        request = urllib.request.Request(
            f"{collector_url}/v1/batch",
            data=gzip.compress(json.dumps(body).encode()),
            headers={
                "Authorization": f"Basic {auth}",
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(json.load(response)["accepted"])
        except urllib.error.HTTPError as exc:
            if exc.code < 500 and exc.code != 429:
                raise RuntimeError(f"collector refused a batch: {exc.code} {exc.read()!r}") from exc
            if (wait := exc.headers.get("Retry-After", "")).isdigit():  # throttled: as asked
                time.sleep(int(wait))
        except OSError:
            pass
        time.sleep(min(0.2 * 2**attempt, 5))
    raise RuntimeError("collector did not accept a batch after 8 attempts")


def get_json(url: str, read_key: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {read_key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def counts(worker_url: str, read_key: str, since: datetime) -> list[dict[str, Any]]:
    """Stored events per name, of those received since `since`."""
    query = urllib.parse.urlencode({"received_since": since.isoformat()})
    return list(get_json(f"{worker_url}/v1/events/counts?{query}", read_key))


def stored_ids(worker_url: str, read_key: str, ids: Iterable[str]) -> set[str]:
    """Which of these messageIds the worker has stored, asked a few hundred at a time."""
    ids, found = list(ids), set[str]()
    for i in range(0, len(ids), 200):
        chunk = ids[i : i + 200]
        query = urllib.parse.urlencode({"message_id": chunk, "limit": len(chunk)}, doseq=True)
        rows = get_json(f"{worker_url}/v1/events?{query}", read_key)
        found.update(row["message_id"] for row in rows)
    return found


def print_meters(
    worker_url: str, read_key: str, tenant: str, start: datetime, to: datetime
) -> None:
    """Each meter's quantity over the demo's days, all customers together, from the usage API.
    The range is on whole minutes (per-minute meters answer no other) and in the past, so held
    meters answer the same whenever they are asked."""
    start, to = to_minute(start), to_minute(to)
    print(f"\n  tenant {tenant}: meters from {start:%Y-%m-%d} to {to:%Y-%m-%d %H:%M} UTC")
    for meter in get_json(f"{worker_url}/v1/meters", read_key):
        query = urllib.parse.urlencode(
            {"from": start.isoformat(), "to": to.isoformat(), "by_customer": "false"}
        )
        answer = get_json(f"{worker_url}/v1/meters/{meter['name']}/usage?{query}", read_key)
        quantity = answer["data"][0]["quantity"] if answer["data"] else "0"
        print(f"    {meter['name']:<20} {quantity:>14} {meter['unit']}")


def print_activations(worker_url: str, read_key: str, tenant: str) -> None:
    """Each activation rule's verdicts so far, from the analytics API."""
    rules = get_json(f"{worker_url}/v1/activation-rules", read_key)
    if not rules:
        return
    print(f"\n  tenant {tenant}: activation, decided as the events streamed in")
    for rule in rules:
        query = urllib.parse.urlencode({"rule": rule["name"], "cohort": "week"})
        cohorts = get_json(f"{worker_url}/v1/activations/cohorts?{query}", read_key)["data"]
        started = sum(c["subjects"] for c in cohorts)
        query = urllib.parse.urlencode({"rule": rule["name"], "limit": 10_000})
        verdicts = get_json(f"{worker_url}/v1/activations?{query}", read_key)
        ttv = sorted(v["time_to_value_seconds"] for v in verdicts if v["type"] == "activation")
        median = f"  median time to value {ttv[len(ttv) // 2] / 3600:.1f} h" if ttv else ""
        print(
            f"    {rule['name']:<24} {started:>3} {rule['subject']}s started  {len(ttv):>3}"
            f" activated  {len(verdicts) - len(ttv):>3} missed{median}"
        )


def print_alerts(worker_url: str, read_key: str, tenant: str) -> int:
    """The plan thresholds the demo's accounts crossed, from the alerts API; how many records
    the tenant has."""
    every = get_json(f"{worker_url}/v1/alerts?limit=10000", read_key)
    found = [a for a in every if a["kind"] == "fired"]
    if not found:
        return len(every)
    crossed = Counter(f"{a['meter']} {a['threshold']}" for a in found)
    accounts = len({a["account"] for a in found})
    print(f"\n  tenant {tenant}: plan thresholds crossed by {accounts} accounts (/v1/alerts)")
    for what, n in sorted(crossed.items()):
        print(f"    {what:<24} {n:>3} account{'' if n == 1 else 's'}")
    return len(every)


def print_received(data_dir: Path, alerts: int, wait_seconds: float = 20.0) -> None:
    """What the demo's webhook receiver got, once it holds every alert record sent (the
    sender delivers a moment after the worker wrote them)."""
    path = received_path(data_dir)
    deadline = time.monotonic() + wait_seconds
    ids: set[str] = set()
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        ids = {json.loads(line)["webhook_id"] for line in lines}
        if len(ids) >= alerts:
            break
        time.sleep(0.5)
    print(
        f"\n  webhooks: the demo's receiver verified the signatures of {len(ids)} of the"
        f" {alerts} alert records ({path})"
    )


def print_health(worker_url: str, read_key: str, tenant: str) -> None:
    """The three least healthy accounts, from the health API (when `[health]` is configured)."""
    try:
        answer = get_json(f"{worker_url}/v1/health?limit=3", read_key)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # no [health] section
            return
        raise
    accounts = answer["accounts"]
    at_risk = sum(1 for a in accounts if a["below_threshold"])
    print(
        f"\n  tenant {tenant}: the {len(accounts)} lowest health scores (0-100; an account is at"
        f" risk below {answer['threshold']:g}: {at_risk} of these {len(accounts)} are)"
    )
    for account in accounts:
        parts = "  ".join(f"{k} {v:g}" for k, v in account["components"].items())
        print(f"    {account['account']:<20} {account['score']:>5.1f}   {parts}")


def run(
    collector_url: str,
    worker_url: str,
    write_keys: dict[str, str],
    read_keys: dict[str, str],
    plan: Plan = Plan(),
    wait_seconds: float = 60.0,
    data_dir: Path | None = None,
    receiver: bool = False,
) -> dict[str, Counter[str]]:
    """Send every tenant's stream, wait until ClickHouse holds it all, print what landed.
    With `data_dir`, a second run sends the same events as the first (see `anchor`)."""
    began = datetime.now(UTC)
    now, again = anchor(data_dir)
    if again:
        print(
            f"the demo's data ends at {now:%Y-%m-%d %H:%M} UTC, as when it was first sent (kept in"
            f" {data_dir / ANCHOR_FILE if data_dir else ''}): sending the same events again,"
            " which adds nothing; remove that file for new data"
        )
    sent: dict[str, list[str]] = {}
    for tenant, key in write_keys.items():
        events = generate(tenant, plan, now)
        for i in range(0, len(events), 100):
            post_batch(collector_url, key, events[i : i + 100])
        sent[tenant] = [e["messageId"] for e in events]
        print(f"sent {len(events):>6} events for tenant {tenant}")
    before = time.monotonic()
    deadline = before + wait_seconds
    stored: dict[str, set[str]] = {tenant: set() for tenant in sent}
    while True:
        for t, ids in sent.items():
            stored[t] |= stored_ids(worker_url, read_keys[t], set(ids) - stored[t])
        if all(len(stored[t]) == len(sent[t]) for t in sent) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(f"\nin ClickHouse after {time.monotonic() - before:.1f}s:")
    # what was received since the demo's data was first sent: this run's, or the first run's
    since = min(began, now)
    landed: dict[str, Counter[str]] = {}
    for tenant in sent:
        rows = counts(worker_url, read_keys[tenant], since)
        landed[tenant] = Counter({r["event"] or f"({r['type']})": r["events"] for r in rows})
        print(f"\n  tenant {tenant}: {len(stored[tenant])} of {len(sent[tenant])} events stored")
        for row in rows:
            name = row["event"] or f"({row['type']})"
            print(
                f"    {name:<18} {row['events']:>6} events  {row['accounts']:>3} accounts"
                f"  {row['users']:>3} users"
            )
    missing = {t: len(sent[t]) - len(stored[t]) for t in sent if len(stored[t]) < len(sent[t])}
    alerts = 0
    for tenant in sent:
        print_meters(
            worker_url, read_keys[tenant], tenant, now - timedelta(days=plan.days + 3), now
        )
        print_activations(worker_url, read_keys[tenant], tenant)
        alerts += print_alerts(worker_url, read_keys[tenant], tenant)
        print_health(worker_url, read_keys[tenant], tenant)
    if receiver and data_dir is not None:
        print_received(data_dir, alerts)
    if missing:
        raise RuntimeError(f"not every event reached ClickHouse within {wait_seconds}s: {missing}")
    return landed
