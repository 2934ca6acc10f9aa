"""The SDK client on scripted transports: batching, the bounded queue, retries, flush, shutdown."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from usage_stream_sdk import Client, Failure, FailureKind, FatalError, RetryableError, SendResult
from usage_stream_sdk.outbox import ENVELOPE_BYTES
from usage_stream_sdk.retry import Backoff, parse_retry_after

FAST = Backoff(base=0.001, cap=0.01)


class Scripted:
    """Answers each send from a script of results or exceptions (the last one repeats);
    `gate` can hold every send until released."""

    def __init__(self, *script: SendResult | Exception) -> None:
        self.script = list(script) or [SendResult()]
        self.batches: list[list[dict[str, Any]]] = []
        self.threads: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.sent = threading.Condition()
        self.closed = False

    def send(self, messages: Sequence[bytes]) -> SendResult:
        with self.sent:
            self.threads.append(threading.current_thread().name)
            self.batches.append([json.loads(m) for m in messages])
            self.sent.notify_all()
        self.gate.wait(30)
        outcome = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def wait_for_batches(self, count: int) -> None:
        """Until the sender has handed over `count` batches; the timeout guards against a hang."""
        with self.sent:
            assert self.sent.wait_for(lambda: len(self.batches) >= count, timeout=30)

    def close(self) -> None:
        self.closed = True

    @property
    def ids(self) -> list[str]:
        return [m["messageId"] for batch in self.batches for m in batch]


@pytest.fixture
def failures() -> list[Failure]:
    return []


@pytest.fixture
def make(failures: list[Failure]) -> Iterator[Any]:
    made: list[Client] = []

    def make(transport: Scripted, **options: Any) -> Client:
        client = Client(transport=transport, on_error=failures.append, backoff=FAST, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.shutdown(timeout=1)


def test_batches_by_count_and_flush_sends_the_rest(make: Any) -> None:
    transport = Scripted()
    client = make(transport, flush_at=3, flush_interval=60)
    receipts = [client.track("u-1", "api_call", {"n": i}) for i in range(7)]
    assert all(receipts)
    transport.wait_for_batches(2)
    assert client.flush(timeout=30)
    assert [len(b) for b in transport.batches] == [3, 3, 1]
    assert transport.ids == [r.message_id for r in receipts]  # in order, ids as returned
    assert client.stats.delivered == 7 and client.stats.pending == 0


def test_batches_by_bytes(make: Any) -> None:
    transport = Scripted()
    budget = 1000
    client = make(transport, flush_at=100, flush_interval=60, max_batch_bytes=budget)
    for i in range(12):
        client.track("u-1", "api_call", {"pad": "x" * 200, "n": i})
    assert client.flush(timeout=30)
    assert len(transport.batches) > 1 and sum(map(len, transport.batches)) == 12
    for batch in transport.batches:
        encoded = sum(len(json.dumps(m, separators=(",", ":"))) + 1 for m in batch)
        assert encoded <= budget - ENVELOPE_BYTES


def test_batches_by_interval_without_a_flush(make: Any) -> None:
    transport = Scripted()
    client = make(transport, flush_at=100, flush_interval=0.05)
    client.track("u-1", "api_call")
    transport.wait_for_batches(1)
    assert len(transport.batches[0]) == 1


def test_a_full_queue_refuses_the_call_counts_and_reports_it(
    make: Any, failures: list[Failure]
) -> None:
    transport = Scripted()
    transport.gate.clear()  # the first batch hangs in flight
    client = make(transport, flush_at=1, max_queue_size=2)
    assert client.track("u-1", "e", {"n": 0})
    transport.wait_for_batches(1)  # taken by the sender: the queue is empty again
    queued = [client.track("u-1", "e", {"n": n}) for n in (1, 2)]
    refused = client.track("u-1", "e", {"n": 3})
    assert all(queued) and not refused
    assert refused.error is not None and "queue is full" in refused.error
    assert client.stats.dropped == 1 and client.stats.queued == 3
    (failure,) = failures
    assert failure.kind is FailureKind.QUEUE_FULL
    assert failure.messages[0]["messageId"] == refused.message_id
    transport.gate.set()
    assert client.flush(timeout=30)
    assert client.stats.delivered == 3
    assert refused.message_id not in transport.ids


def test_retries_resend_the_same_message_ids(make: Any) -> None:
    transport = Scripted(RetryableError("down"), RetryableError("down"), SendResult())
    client = make(transport)
    receipts = [client.track("u-1", "e", {"n": i}) for i in range(3)]
    assert client.flush(timeout=30)
    assert len(transport.batches) == 3
    assert transport.batches[0] == transport.batches[1] == transport.batches[2]
    assert [m["messageId"] for m in transport.batches[0]] == [r.message_id for r in receipts]
    assert client.stats.retries == 2 and client.stats.delivered == 3


class RecordingBackoff(Backoff):
    def __init__(self) -> None:
        super().__init__(base=0.001, cap=0.01)
        object.__setattr__(self, "calls", [])

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        self.calls.append((attempt, retry_after))  # type: ignore[attr-defined]
        return 0.0


def test_the_server_retry_after_reaches_the_backoff(failures: list[Failure]) -> None:
    transport = Scripted(RetryableError("429", 7.0), RetryableError("503"), SendResult())
    backoff = RecordingBackoff()
    client = Client(transport=transport, backoff=backoff)
    client.track("u-1", "e")
    assert client.flush(timeout=30)
    assert backoff.calls == [(0, 7.0), (1, None)]  # type: ignore[attr-defined]
    client.shutdown(1)


def test_backoff_grows_with_full_jitter_and_never_undercuts_retry_after() -> None:
    backoff, rng = Backoff(base=0.5, cap=30), random.Random(1)
    for attempt in range(12):
        ceiling = min(30, 0.5 * 2**attempt)
        delays = [backoff.delay(attempt, None, rng) for _ in range(50)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # jitter spreads over the whole range
        assert all(backoff.delay(attempt, 4.0, rng) >= 4.0 for _ in range(20))
    assert backoff.delay(0, 10_000, rng) == backoff.max_retry_after


def test_retry_after_header_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("3", now) == 3
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now) == 60
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:00 -0000", now) == 60
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None


def test_fatal_errors_are_not_retried(make: Any, failures: list[Failure]) -> None:
    transport = Scripted(FatalError("HTTP 401: unknown key"))
    client = make(transport)
    client.track("u-1", "e")
    client.track("u-1", "e")
    assert client.flush(timeout=30)
    assert len(transport.batches) == 1
    assert client.stats.failed == 2 and client.stats.retries == 0
    assert [f.kind for f in failures] == [FailureKind.UNDELIVERABLE]
    assert "401" in failures[0].reason and len(failures[0].messages) == 2


def test_events_the_collector_rejects_are_counted_and_reported(
    make: Any, failures: list[Failure]
) -> None:
    transport = Scripted(SendResult({1: "the event does not follow the event contract"}))
    client = make(transport)
    receipts = [client.track("u-1", "e", {"n": i}) for i in range(3)]
    assert client.flush(timeout=30)
    assert client.stats.delivered == 2 and client.stats.rejected == 1
    (failure,) = failures
    assert failure.kind is FailureKind.REJECTED
    assert failure.messages[0]["messageId"] == receipts[1].message_id


def test_a_batch_that_keeps_failing_is_given_up_after_retry_timeout(
    make: Any, failures: list[Failure]
) -> None:
    client = make(Scripted(RetryableError("down")), retry_timeout=0.05)
    client.track("u-1", "e")
    assert client.flush(timeout=30)
    assert client.stats.failed == 1 and client.stats.retries >= 1
    assert failures[0].kind is FailureKind.GAVE_UP


def test_flush_times_out_while_delivery_hangs_then_succeeds(make: Any) -> None:
    transport = Scripted()
    transport.gate.clear()
    client = make(transport)
    client.track("u-1", "e")
    assert client.flush(timeout=0.2) is False
    transport.gate.set()
    assert client.flush(timeout=30) is True


def test_shutdown_reports_what_it_could_not_deliver_and_refuses_new_calls(
    make: Any, failures: list[Failure]
) -> None:
    client = make(Scripted(RetryableError("down")), flush_at=2)
    for i in range(5):
        client.track("u-1", "e", {"n": i})
    assert client.shutdown(timeout=0.3) is False
    stats = client.stats
    assert stats.failed == 5 and stats.delivered == 0 and stats.pending == 0
    assert {f.kind for f in failures} == {FailureKind.ABANDONED}
    assert sum(len(f.messages) for f in failures) == 5
    late = client.track("u-1", "e")
    assert not late and client.stats.dropped == 1


def test_sync_mode_delivers_before_returning(make: Any) -> None:
    transport = Scripted(SendResult(), SendResult({0: "bad"}))
    client = make(transport, sync=True)
    first = client.track("u-1", "e")
    assert first.ok and transport.ids == [first.message_id]
    assert transport.threads == [threading.current_thread().name]
    second = client.track("u-1", "e")
    assert not second and second.error == "bad"
    assert client.stats.delivered == 1 and client.stats.rejected == 1


def test_a_message_over_the_size_limit_is_refused_at_the_call(
    make: Any, failures: list[Failure]
) -> None:
    client = make(Scripted(), max_event_bytes=500)
    receipt = client.track("u-1", "e", {"blob": "x" * 600})
    assert not receipt and receipt.error is not None and "limit is 500" in receipt.error
    assert client.stats.dropped == 1 and failures[0].kind is FailureKind.TOO_LARGE


def test_mistakes_in_code_raise_at_the_call(make: Any) -> None:
    client = make(Scripted())
    with pytest.raises(ValueError, match="user_id or anonymous_id"):
        client.track(None, "e")
    with pytest.raises(ValueError, match="event name"):
        client.track("u-1", "")
    with pytest.raises(TypeError, match="not JSON serializable"):
        client.track("u-1", "e", {"x": object()})
    with pytest.raises(ValueError):  # NaN is not JSON
        client.track("u-1", "e", {"x": float("nan")})


@pytest.mark.parametrize(
    ("call", "fields", "match"),
    [
        ("track", {"user_id": "", "event": "e"}, "user_id or anonymous_id is required"),
        ("track", {"user_id": "", "event": "e", "anonymous_id": ""}, "user_id or anonymous_id"),
        ("identify", {"user_id": ""}, "user_id or anonymous_id is required"),
        ("group", {"user_id": "u-1", "group_id": ""}, "group_id is required"),
        ("track", {"user_id": "u-1", "event": "e" * 256}, "event is 256 characters"),
        ("track", {"user_id": "u" * 256, "event": "e"}, "user_id is 256 characters"),
        ("identify", {"user_id": None, "anonymous_id": "a" * 256}, "anonymous_id is 256"),
        ("track", {"user_id": "u-1", "event": "e", "group_id": "g" * 256}, "group_id is 256"),
        ("track", {"user_id": "u-1", "event": "e", "message_id": "m" * 256}, "message_id is 256"),
    ],
)
def test_ids_and_names_the_collector_refuses_raise_at_the_call(
    make: Any, call: str, fields: dict[str, Any], match: str
) -> None:
    # the collector's contract: ids and event names of 1 to 255 characters
    client = make(Scripted())
    with pytest.raises(ValueError, match=match):
        getattr(client, call)(**fields)
    assert client.stats.queued == 0


def test_an_empty_id_is_left_out_and_what_the_collector_takes_is_sent_as_given(
    make: Any,
) -> None:
    transport = Scripted()
    client = make(transport)
    client.track("", "e", anonymous_id="anon-1")  # not signed in yet: the anonymous id stands
    client.track("u-1", "e", group_id="")  # no account
    client.track(" ", " ")  # the collector takes whitespace as an id and as an event name
    client.track("u" * 255, "e" * 255, group_id="g" * 255)
    assert client.flush(timeout=30)
    anonymous, no_account, blank, longest = transport.batches[0]
    assert "userId" not in anonymous and anonymous["anonymousId"] == "anon-1"
    assert "groupId" not in no_account
    assert blank["userId"] == " " and blank["event"] == " "
    assert len(longest["userId"]) == len(longest["event"]) == len(longest["groupId"]) == 255


def test_message_fields_follow_segment(make: Any) -> None:
    transport = Scripted()
    client = make(transport)
    when = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
    client.track(42, "bought", {"price": Decimal("9.99"), "at": when}, group_id="acct-9")
    client.identify("u-1", {"plan": "team"}, anonymous_id="anon-1", timestamp=when)
    client.group("u-1", "acct-9", {"name": "Acme"}, message_id="fixed-id")
    assert client.flush(timeout=30)
    track, identify, group = transport.batches[0]
    assert track["userId"] == "42" and track["groupId"] == "acct-9"
    assert track["properties"] == {"price": "9.99", "at": "2026-03-04T05:06:07.890Z"}
    assert track["context"]["library"]["name"] == "usage-stream-python"
    assert identify["timestamp"] == "2026-03-04T05:06:07.890Z"
    assert identify["anonymousId"] == "anon-1" and identify["traits"] == {"plan": "team"}
    assert group["messageId"] == "fixed-id" and group["groupId"] == "acct-9"
