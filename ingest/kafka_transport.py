"""An SDK transport for trusted server-side producers: the collector's checks and acks, no HTTP."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime

from usage_stream_sdk import FieldError, RetryableError, SendResult

from ingest import strict_json
from ingest.limits import Limits
from ingest.sink import KafkaEventSink, SinkUnavailable
from ingest.validation import admit

DEFAULT_LIMITS = Limits()


class KafkaTransport:
    """Produces accepted events to `topic` and rejected ones to `invalid_topic`, exactly as the
    collector would for `tenant`, and returns only once Kafka acknowledged both (acks=all).

    The producer belongs to the process that made it: after fork() the child makes its own,
    since a producer's I/O thread does not survive fork.
    """

    def __init__(
        self,
        bootstrap: str,
        tenant: str,
        *,
        topic: str = "events",
        invalid_topic: str = "events.invalid",
        timeout: float = 10.0,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self._bootstrap = bootstrap
        self._tenant = tenant
        self._topic = topic
        self._invalid_topic = invalid_topic
        self._timeout = timeout
        self._limits = limits
        self._sink: KafkaEventSink | None = None
        self._pid = os.getpid()

    def _current_sink(self) -> KafkaEventSink:
        if self._sink is None or self._pid != os.getpid():
            # the parent's producer (if any) is left alone: closing it here would join a
            # thread this process does not have
            self._sink = KafkaEventSink(
                self._bootstrap, self._topic, self._timeout, invalid_topic=self._invalid_topic
            )
            self._pid = os.getpid()
        return self._sink

    def send(self, messages: Sequence[bytes]) -> SendResult:
        admission = admit(
            [strict_json.loads(m) for m in messages],  # judged as the collector judges a body
            tenant=self._tenant,
            # This process stamped the timestamps with the clock it reads now: nothing to
            # correct, so no sentAt.
            received_at=datetime.now(UTC),
            limits=self._limits,
        )
        try:
            self._current_sink().publish_blocking(admission.accepted, admission.rejected)
        except SinkUnavailable as exc:
            raise RetryableError(str(exc)) from exc
        return SendResult(
            {r.index: r.reason for r in admission.rejected},
            {
                r.index: tuple(FieldError(**e) for e in r.errors)
                for r in admission.rejected
                if r.errors
            },
        )

    def close(self) -> None:
        if self._sink is not None and self._pid == os.getpid():
            self._sink.close()
        self._sink = None
