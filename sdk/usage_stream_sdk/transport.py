"""The SDK's Transport boundary: send one batch, say what was rejected, or raise retry/fatal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class FieldError:
    """One field of a rejected message and what is wrong with it, as the receiver named them:
    `field` is the dotted path in the request it got (the collector's `batch.3.track.event`)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class SendResult:
    """The batch is delivered except the messages in `rejected` (batch index → reason), which
    the receiver refused as invalid; sending those again would not help. `errors` holds the
    fields it found wrong in them (batch index → field errors), where it named any."""

    rejected: dict[int, str] = field(default_factory=dict)
    errors: dict[int, tuple[FieldError, ...]] = field(default_factory=dict)


class RetryableError(Exception):
    """Nothing was accepted, and the same batch may succeed later (network, 429, 5xx)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class FatalError(Exception):
    """Nothing was accepted, and sending the same batch again would fail the same way."""


class Transport(Protocol):
    def send(self, messages: Sequence[bytes]) -> SendResult:
        """Deliver encoded messages (compact JSON objects) as one batch; raise RetryableError
        or FatalError when none of them was accepted."""
        ...

    def close(self) -> None: ...
