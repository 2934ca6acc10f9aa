"""The collector's limits on what one request may carry, in one frozen value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

# Segment's limits, so a batch a Segment library builds fits ours.
SEGMENT_EVENT_BYTES = 32 * 1024
SEGMENT_BATCH_BYTES = 500 * 1024


@dataclass(frozen=True)
class Limits:
    """Body bytes count after gunzip too, so a small gzip bomb is refused like a large body."""

    max_body_bytes: int = 512 * 1024
    max_batch_events: int = 2000
    max_event_bytes: int = SEGMENT_EVENT_BYTES
    # Past receivedAt + this, an event time is a broken clock, not a plan: clamp it.
    max_future: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if min(self.max_body_bytes, self.max_batch_events, self.max_event_bytes) < 1:
            raise ValueError("limits must be positive")
        if self.max_future < timedelta(0):
            raise ValueError("max_future must not be negative")
