"""Sending one record again (`usage-stream webhooks resend ID`): to every endpoint the log has
a delivery of it for, once each, with the same `webhook-id`; each try written to the log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from processors.webhooks.deliveries import DeliveryLog
from processors.webhooks.lanes import Post, utc_now
from processors.webhooks.model import Attempt, DeliveryStatus, Endpoint, Outcome
from processors.webhooks.signing import Signer
from processors.webhooks.transport import post


@dataclass(frozen=True)
class Resent:
    """What re-sending to one endpoint came to; `attempt` is None when it was not tried."""

    endpoint: str
    url: str
    status: DeliveryStatus
    outcome: Outcome
    attempt: int | None

    def describe(self) -> str:
        where = f"endpoint {self.endpoint}" + (f" ({self.url})" if self.url else "")
        if self.attempt is None:
            return f"{where}: not sent: {self.outcome.error}"
        took = f"in {self.outcome.latency:.3f} s, attempt {self.attempt}"
        if self.status is DeliveryStatus.DELIVERED:
            return f"{where}: delivered: HTTP {self.outcome.status_code} {took}"
        return f"{where}: {self.status.value}: {self.outcome.error} {took}"


class UnknownRecord(LookupError):
    """The log has no delivery of this record (to this endpoint)."""


def resend(
    record_id: str,
    configured: list[Endpoint],
    deliveries: DeliveryLog,
    only: str | None = None,
    send: Post = post,
    clock: Callable[[], datetime] = utc_now,
) -> list[Resent]:
    """Try each delivery of the record once more, whatever its status; a 2xx makes it
    delivered, anything else leaves it failed (a pending one stays the sender's to retry)."""
    logged = deliveries.of_record(record_id)
    logged = [d for d in logged if only is None or d.delivery.endpoint == only]
    if not logged:
        to = f" to endpoint {only!r}" if only is not None else ""
        raise UnknownRecord(f"the delivery log has no delivery of record {record_id!r}{to}")
    by_name = {e.name: e for e in configured}
    out = []
    for entry in logged:
        delivery = entry.delivery
        endpoint = by_name.get(delivery.endpoint)
        if endpoint is None or endpoint.config.tenant != delivery.tenant:
            why = f"no endpoint {delivery.endpoint!r} of tenant {delivery.tenant!r} is configured"
            out.append(Resent(delivery.endpoint, "", entry.status, Outcome(0, why, 0.0), None))
            continue
        config = endpoint.config
        at = clock()
        headers = Signer(config.secret).headers(delivery.record_id, delivery.payload, at)
        outcome = send(config.url, delivery.payload, headers, config.timeout_seconds)
        if outcome.ok:
            status = DeliveryStatus.DELIVERED
        else:
            status = (
                DeliveryStatus.PENDING
                if entry.status is DeliveryStatus.PENDING
                else DeliveryStatus.FAILED
            )
        number = delivery.attempts + 1
        next_at = delivery.next_attempt_at if status is DeliveryStatus.PENDING else None
        attempt = Attempt(number, status, at, outcome, next_at, config.shown_url)
        deliveries.write([(delivery, attempt)])
        out.append(Resent(endpoint.name, config.shown_url, status, outcome, number))
    return out
