"""Consumer lag read from the broker: each partition's end offset minus the group's commit."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from runtime.offsets import (
    Offsets,
    committed_offsets,
    earliest_offsets,
    end_offsets,
    partitions_of,
)

log = logging.getLogger(__name__)
Lag = Offsets  # messages not yet committed per (topic, partition)


@dataclass(frozen=True)
class Reading:
    """One answer of the broker. `asked_at` is the wall clock just before the end offsets were
    asked: every record appended before that moment sits below its partition's `end`."""

    asked_at: datetime
    end: Offsets
    lag: Lag


def lag_of(
    end: Mapping[tuple[str, int], int],
    committed: Mapping[tuple[str, int], int],
    earliest: Mapping[tuple[str, int], int],
) -> Lag:
    """Messages not yet committed per partition. A partition the group never committed is read
    from its earliest offset (the worker's auto_offset_reset), so that is what it lags by."""
    return {
        tp: max(0, offset - committed.get(tp, earliest.get(tp, 0))) for tp, offset in end.items()
    }


class ConsumerLagProbe:
    """Asks the broker, every `interval` seconds on its own thread, where the group stands.

    The numbers come from the broker, not from the consumer: they keep growing while a worker
    is stuck retrying a batch, which is exactly when they matter. Every worker reports the whole
    group's lag, so dashboards and alerts take `max by (topic, partition)`, never `sum`. The
    cost is bounded: three or four small admin requests per interval, whatever the scrape rate.
    `readers` get each whole reading too (the worker learns from it which partitions it has
    written to their end: processors.worker_progress.receipts.CaughtUp).
    """

    def __init__(
        self,
        bootstrap: str,
        group: str,
        topics: Sequence[str],
        report: Callable[[Lag | None], None],
        interval: float = 5.0,
        readers: Sequence[Callable[[Reading], None]] = (),
    ) -> None:
        self._bootstrap = bootstrap.split(",")
        self._group = group
        self._topics = list(topics)
        self._report = report
        self._readers = list(readers)
        self._interval = interval
        self._admin: KafkaAdminClient | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="consumer-lag", daemon=True)
        self._last_success = float("-inf")

    @property
    def reachable(self) -> bool:
        """The broker answered within the last three intervals: readiness reads this."""
        return time.monotonic() - self._last_success < 3 * self._interval

    def read(self) -> Reading:
        if self._admin is None:
            timeout_ms = int(max(self._interval, 1.0) * 1000)
            self._admin = KafkaAdminClient(
                bootstrap_servers=self._bootstrap, request_timeout_ms=timeout_ms
            )
        admin = self._admin
        partitions = partitions_of(admin, self._topics)
        asked_at = datetime.now(UTC)
        if not partitions:
            return Reading(asked_at, {}, {})
        end = end_offsets(admin, partitions)
        committed = committed_offsets(admin, self._group, partitions)
        never = [tp for tp in partitions if (tp.topic, tp.partition) not in committed]
        earliest = earliest_offsets(admin, never) if never else {}
        return Reading(asked_at, end, lag_of(end, committed, earliest))

    def probe(self) -> None:
        """One reading, reported; a failure reports None and reconnects next time."""
        try:
            reading = self.read()
        except Exception as exc:  # whatever fails, the thread must live on and try again
            log.warning("consumer lag not read: %r", exc)
            self._close_admin()
            self._report(None)
            return
        self._last_success = time.monotonic()
        self._report(reading.lag)
        for reader in self._readers:
            try:
                reader(reading)
            except Exception as exc:  # ClickHouse may fail it: the next reading tries again
                log.warning("consumer lag reading not used: %r", exc)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.probe()
            self._stop.wait(self._interval)
        self._close_admin()

    def start(self) -> ConsumerLagProbe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * self._interval)

    def _close_admin(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(KafkaError, OSError):
                self._admin.close()
            self._admin = None
