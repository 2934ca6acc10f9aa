"""Signatures a Standard Webhooks receiver accepts: checked with the standard's own library."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from standardwebhooks import Webhook, WebhookVerificationError

from processors.webhooks.signing import Signer

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
BODY = (
    b'{"type": "usage_alert", "id": "3f1c", "tenant": "acme", "quantity": "812", "x": "\xc3\xa9"}'
)


def test_a_receiver_verifies_the_signed_body_with_the_standard_library() -> None:
    now = datetime.now(UTC)
    headers = Signer(SecretStr(SECRET)).headers("3f1c", BODY, now)
    assert headers["webhook-id"] == "3f1c"
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["Content-Type"] == "application/json"
    assert Webhook(SECRET).verify(BODY, headers) == {
        "type": "usage_alert", "id": "3f1c", "tenant": "acme", "quantity": "812", "x": "é"
    }  # fmt: skip


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: ({**h, "webhook-id": "other"}, b),  # a signature lifted onto another id
        lambda h, b: (h, b.replace(b"812", b"813")),  # the body changed on the way
        lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) + 1)}, b),
    ],
)
def test_any_change_to_id_body_or_timestamp_fails_verification(tamper: object) -> None:
    headers = Signer(SecretStr(SECRET)).headers("3f1c", BODY, datetime.now(UTC))
    changed, body = tamper(headers, BODY)  # type: ignore[operator]
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body, changed)


def test_another_secret_does_not_verify() -> None:
    headers = Signer(SecretStr(SECRET)).headers("3f1c", BODY, datetime.now(UTC))
    other = "whsec_" + base64.b64encode(b"z" * 32).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(BODY, headers)


def test_each_try_is_signed_at_its_own_time_with_the_same_id() -> None:
    """A retry an hour later is fresh to the receiver's 5-minute tolerance, and deduplicable."""
    signer = Signer(SecretStr(SECRET))
    first = signer.headers("3f1c", BODY, datetime.now(UTC) - timedelta(hours=1))
    retry = signer.headers("3f1c", BODY, datetime.now(UTC))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(BODY, first)
    assert Webhook(SECRET).verify(BODY, retry)["id"] == "3f1c"
    assert first["webhook-id"] == retry["webhook-id"]
