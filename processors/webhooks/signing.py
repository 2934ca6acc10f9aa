"""Standard Webhooks signatures: the headers that let a receiver check who sent a body, and
that it is the body sent (HMAC-SHA256 over id, timestamp and body, by the standard's library)."""

from __future__ import annotations

from datetime import datetime
from math import floor

from pydantic import SecretStr
from standardwebhooks import Webhook

USER_AGENT = "usage-stream-webhooks/1"


class Signer:
    """Signs for one endpoint's secret (`whsec_…`, checked by the config)."""

    def __init__(self, secret: SecretStr) -> None:
        self._webhook = Webhook(secret.get_secret_value())

    def headers(self, message_id: str, body: bytes, at: datetime) -> dict[str, str]:
        """The request's headers: `webhook-id` the same on every try and re-send (receivers
        deduplicate by it), `webhook-timestamp` this try's, and the signature over both and
        the body's exact bytes."""
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(floor(at.timestamp())),
            "webhook-signature": self._webhook.sign(message_id, at, body),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
