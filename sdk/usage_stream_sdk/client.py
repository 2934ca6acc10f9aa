"""The SDK's public client: track, identify and group calls, delivered in the background."""

from __future__ import annotations

import atexit
import json
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from usage_stream_sdk import messages
from usage_stream_sdk.http_transport import HttpTransport
from usage_stream_sdk.outbox import Item, Outbox
from usage_stream_sdk.retry import Backoff
from usage_stream_sdk.transport import FatalError, FieldError, RetryableError, Transport

log = logging.getLogger("usage_stream.sdk")


class FailureKind(Enum):
    QUEUE_FULL = "queue_full"  # never queued: the queue was full
    TOO_LARGE = "too_large"  # never queued: larger than max_event_bytes
    CLOSED = "closed"  # never queued: the client was shut down
    REJECTED = "rejected"  # the collector judged it invalid (it is on events.invalid)
    UNDELIVERABLE = "undeliverable"  # an answer that retrying cannot change (401, 413, ...)
    GAVE_UP = "gave_up"  # still failing after retry_timeout
    ABANDONED = "abandoned"  # shut down (or the process exited) before it could be delivered


DEFAULT_BACKOFF = Backoff()
DROPPED = frozenset({FailureKind.QUEUE_FULL, FailureKind.TOO_LARGE, FailureKind.CLOSED})


@dataclass(frozen=True)
class Failure:
    """Messages that will not be delivered, and why; given to `on_error`. A rejected message
    comes with the fields the collector found wrong in it, to fix in the data that made it."""

    kind: FailureKind
    reason: str
    messages: tuple[dict[str, Any], ...]
    errors: tuple[FieldError, ...] = ()


@dataclass(frozen=True)
class Receipt:
    """What a call returns. In the background mode `ok` means queued for delivery; in the
    synchronous mode it means delivered (held by Kafka). Truthy exactly when ok."""

    message_id: str
    ok: bool
    error: str | None = None

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class Stats:
    """Counters since the client was made (or since fork(), in a child). Every call ends up in
    exactly one of delivered, dropped, rejected or failed, or is still pending."""

    queued: int = 0
    delivered: int = 0
    dropped: int = 0  # never queued: queue full, too large, client closed
    rejected: int = 0
    failed: int = 0  # queued but given up on: undeliverable, gave up, abandoned
    retries: int = 0
    pending: int = 0


class Client:
    """Sends Segment-style calls to the collector (or through another `transport`, e.g. to Kafka).

    Calls return at once: a sender thread batches them by count (`flush_at`), bytes
    (`max_batch_bytes`) and time (`flush_interval`) and retries what fails with backoff for up
    to `retry_timeout` seconds. Nothing is lost silently: a call that cannot be queued returns
    a falsy Receipt, and every message that is not delivered is counted in `stats` and given to
    `on_error`. The client flushes at interpreter exit (up to `shutdown_timeout`) and keeps
    working in a child after fork(). `sync=True` sends each call before returning, for scripts
    and serverless functions.
    """

    def __init__(
        self,
        write_key: str | None = None,
        host: str = "http://127.0.0.1:8080",
        *,
        transport: Transport | None = None,
        sync: bool = False,
        max_queue_size: int = 10_000,
        flush_at: int = 100,
        flush_interval: float = 0.5,
        max_batch_bytes: int = 500 * 1024,
        max_event_bytes: int = 32 * 1024,
        retry_timeout: float = 300.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        shutdown_timeout: float = 10.0,
        gzip: bool = True,
        timeout: float = 10.0,
        on_error: Callable[[Failure], None] | None = None,
        clock: Callable[[], datetime] = messages.utc_now,
        new_id: Callable[[], str] = messages.new_message_id,
    ) -> None:
        if transport is None:
            if not write_key:
                raise ValueError("a write key (or a transport) is required")
            transport = HttpTransport(write_key, host, gzip=gzip, timeout=timeout)
        if min(max_queue_size, flush_at, max_batch_bytes, max_event_bytes) < 1:
            raise ValueError("sizes must be positive")
        self._transport = transport
        self._sync = sync
        self._capacity = max_queue_size
        self._flush_at = flush_at
        self._flush_interval = flush_interval
        self._max_batch_bytes = max_batch_bytes
        self._max_event_bytes = max_event_bytes
        self._retry_timeout = retry_timeout
        self._backoff = backoff
        self._shutdown_timeout = shutdown_timeout
        self._join_grace = timeout + 1.0
        self._on_error = on_error
        self._clock = clock
        self._new_id = new_id
        self._rng = random.Random()
        self._closed = False
        self._fresh_process_state()
        _LIVE.add(self)

    def _fresh_process_state(self) -> None:
        """Everything that belongs to one process. After fork() the child starts with an empty
        queue (what the parent queued is the parent's to send), new locks (the parent's may have
        been held by its threads at the moment of the fork) and its own sender thread."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(("queued", "delivered", "retries"), 0)
        self._failures = dict.fromkeys(FailureKind, 0)
        self._outbox = Outbox(self._capacity)
        self._abort = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- the calls -------------------------------------------------------------------------

    def track(
        self,
        user_id: Any,
        event: str,
        properties: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Receipt:
        """Record that a user did something. Options: anonymous_id, group_id (the customer
        account), context, timestamp (aware datetime; naive is UTC), message_id."""
        return self._call("track", user_id=user_id, event=event, properties=properties, **options)

    def identify(
        self, user_id: Any, traits: Mapping[str, Any] | None = None, **options: Any
    ) -> Receipt:
        """Tie a user to traits. Options as for `track`."""
        return self._call("identify", user_id=user_id, traits=traits, **options)

    def group(
        self, user_id: Any, group_id: Any, traits: Mapping[str, Any] | None = None, **options: Any
    ) -> Receipt:
        """Tie a user to a customer account and give the account traits."""
        return self._call("group", user_id=user_id, group_id=group_id, traits=traits, **options)

    def _call(
        self,
        call: str,
        *,
        message_id: str | None = None,
        timestamp: datetime | None = None,
        **fields: Any,
    ) -> Receipt:
        # The id is fixed here, before any attempt: every retry carries it, so a batch sent
        # twice is stored once downstream.
        message = messages.build(
            call,
            message_id=message_id or self._new_id(),
            timestamp=timestamp or self._clock(),
            **fields,
        )
        raw = messages.encode(message)
        mid = str(message["messageId"])
        if len(raw) > self._max_event_bytes:
            reason = f"the message is {len(raw)} bytes; the limit is {self._max_event_bytes}"
            return self._refuse(FailureKind.TOO_LARGE, reason, mid, raw)
        if self._sync:
            return self._send_now(mid, raw)
        if self._pid != os.getpid():  # forked by a path that skipped the at-fork hook
            self._fresh_process_state()
        with self._lock:
            if self._closed:
                refused: FailureKind | None = FailureKind.CLOSED
            elif not self._outbox.put(mid, raw):
                refused = FailureKind.QUEUE_FULL
            else:
                refused = None
                self._counts["queued"] += 1
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._run, args=(self._outbox,), name="usage-stream-sdk", daemon=True
                    )
                    self._thread.start()
        if refused is FailureKind.CLOSED:
            return self._refuse(refused, "the client is shut down", mid, raw)
        if refused is FailureKind.QUEUE_FULL:
            return self._refuse(refused, f"the queue is full ({self._capacity} messages)", mid, raw)
        return Receipt(mid, True)

    def _refuse(self, kind: FailureKind, reason: str, message_id: str, raw: bytes) -> Receipt:
        self._report(kind, reason, [raw])
        return Receipt(message_id, False, reason)

    def _send_now(self, message_id: str, raw: bytes) -> Receipt:
        self._count("queued")
        error = self._deliver([Item(message_id, raw, time.monotonic())])
        return Receipt(message_id, error is None, error)

    # ---- flushing and shutting down --------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Send what is queued now and wait until it is delivered or given up on.
        False if `timeout` seconds passed first (the messages stay queued)."""
        if self._sync or self._pid != os.getpid():
            return True
        return self._outbox.wait_idle(timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush for up to `timeout` seconds (default `shutdown_timeout`), then stop. What is
        still undelivered then is reported as abandoned. True if everything was settled."""
        timeout = self._shutdown_timeout if timeout is None else timeout
        with self._lock:
            already, self._closed = self._closed, True
        if self._sync:
            self._transport.close()
            return True
        outbox, thread = self._outbox, self._thread
        outbox.close()
        settled = outbox.wait_idle(timeout)
        if not settled:
            self._abort.set()  # the sender stops retrying and reports its batch as abandoned
            leftovers = outbox.drain()
            if leftovers:
                self._report(
                    FailureKind.ABANDONED,
                    "shut down before delivery",
                    [i.raw for i in leftovers],
                )
                outbox.done(len(leftovers))
        if thread is not None:
            thread.join(self._join_grace)
        if thread is not None and thread.is_alive():
            log.warning("%d messages were in flight at shutdown", outbox.pending)
        if not already:
            self._transport.close()
        return settled

    @property
    def stats(self) -> Stats:
        with self._lock:
            failures = dict(self._failures)
            counts = dict(self._counts)
        return Stats(
            queued=counts["queued"],
            delivered=counts["delivered"],
            dropped=sum(n for kind, n in failures.items() if kind in DROPPED),
            rejected=failures[FailureKind.REJECTED],
            failed=sum(
                n for kind, n in failures.items() if kind not in DROPPED | {FailureKind.REJECTED}
            ),
            retries=counts["retries"],
            pending=0 if self._sync else self._outbox.pending,
        )

    # ---- the sender ------------------------------------------------------------------------

    def _run(self, outbox: Outbox) -> None:
        while True:
            batch = outbox.take(self._flush_at, self._max_batch_bytes, self._flush_interval)
            if not batch:
                return  # closed and empty
            try:
                self._deliver(batch)
            finally:
                outbox.done(len(batch))

    def _deliver(self, batch: list[Item]) -> str | None:
        """Send one batch until it is delivered, refused for good, or out of time. Returns the
        error of the first message not delivered, None if all were."""
        raws = [item.raw for item in batch]
        started, attempt = time.monotonic(), 0
        while True:
            try:
                result = self._transport.send(raws)
            except RetryableError as exc:
                if time.monotonic() - started >= self._retry_timeout:
                    reason = f"still failing after {self._retry_timeout:.0f}s: {exc}"
                    return self._report(FailureKind.GAVE_UP, reason, raws)
                wait = self._backoff.delay(attempt, exc.retry_after, self._rng)
                attempt += 1
                self._count("retries")
                log.info("batch of %d not sent (%s); retrying in %.1fs", len(raws), exc, wait)
                if self._abort.wait(wait):
                    return self._report(FailureKind.ABANDONED, f"shut down while {exc}", raws)
                continue
            except FatalError as exc:
                return self._report(FailureKind.UNDELIVERABLE, str(exc), raws)
            except Exception as exc:  # a broken transport must not kill the sender thread
                log.exception("transport failed")
                return self._report(FailureKind.UNDELIVERABLE, repr(exc), raws)
            self._count("delivered", len(raws) - len(result.rejected))
            first_error = None
            for index, reason in sorted(result.rejected.items()):
                errors = result.errors.get(index, ())
                if errors:  # the log and the Receipt name the fields too
                    reason = f"{reason}: {'; '.join(map(str, errors))}"
                first_error = first_error or reason
                self._report(FailureKind.REJECTED, reason, [raws[index]], errors)
            return first_error

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def _report(
        self,
        kind: FailureKind,
        reason: str,
        raws: list[bytes],
        errors: tuple[FieldError, ...] = (),
    ) -> str:
        with self._lock:
            self._failures[kind] += len(raws)
        log.warning("%d message(s) not delivered (%s): %s", len(raws), kind.value, reason)
        if self._on_error is not None:
            try:
                self._on_error(Failure(kind, reason, tuple(json.loads(r) for r in raws), errors))
            except Exception:
                log.exception("on_error raised")
        return reason


# Every live client, for the exit and fork hooks; weak, so a dropped client can be collected.
_LIVE: weakref.WeakSet[Client] = weakref.WeakSet()


def _shutdown_all() -> None:
    """At interpreter exit: what a short-lived process queued still goes out."""
    for client in list(_LIVE):
        if client._pid == os.getpid():
            client.shutdown()


def _after_fork_in_child() -> None:
    for client in list(_LIVE):
        client._fresh_process_state()


atexit.register(_shutdown_all)
os.register_at_fork(after_in_child=_after_fork_in_child)
