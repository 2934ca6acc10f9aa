"""The SDK's Transport boundary: send one batch, say what was rejected, or raise retry/fatal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class SendResult:
    """The batch is delivered except the messages in `rejected` (batch index → reason), which
    the receiver refused as invalid; sending those again would not help."""

    rejected: dict[int, str] = field(default_factory=dict)


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
