"""The SDK's HTTP transport against a scripted server: what it sends, how it reads answers."""

from __future__ import annotations

import base64
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from stand_in import serve
from usage_stream_sdk import Client, Failure, FailureKind, FatalError, HttpTransport, RetryableError

MESSAGES = [b'{"type":"track","messageId":"a"}', b'{"type":"track","messageId":"b"}']


def test_a_batch_is_posted_gzipped_with_basic_auth_and_a_fresh_sent_at() -> None:
    moments = iter([datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 9, tzinfo=UTC)])
    with serve() as stub:
        transport = HttpTransport("wk_1", stub.url + "/", clock=lambda: next(moments))
        transport.send(MESSAGES)
        transport.send(MESSAGES)
    first, second = stub.requests
    assert first.path == "/v1/batch"
    assert first.headers["Content-Encoding"] == "gzip"
    assert first.headers["Authorization"] == "Basic " + base64.b64encode(b"wk_1:").decode()
    assert first.headers["User-Agent"].startswith("usage-stream-python/")
    assert first.document() == {
        "batch": [{"type": "track", "messageId": "a"}, {"type": "track", "messageId": "b"}],
        "sentAt": "2026-01-01T00:00:00.000Z",
    }
    assert second.document()["sentAt"] == "2026-01-01T00:00:09.000Z"  # stamped per attempt


def test_plain_bodies_when_gzip_is_off() -> None:
    with serve() as stub:
        HttpTransport("wk_1", stub.url, gzip=False).send(MESSAGES)
    assert "Content-Encoding" not in stub.requests[0].headers
    assert len(stub.requests[0].document()["batch"]) == 2


def test_rejected_events_listed_in_a_200_are_reported_by_index() -> None:
    answer = {"success": True, "accepted": 1, "rejected": [{"index": 1, "reason": "no event"}]}
    with serve(200, answer) as stub:
        result = HttpTransport("wk_1", stub.url).send(MESSAGES)
    assert result.rejected == {1: "no event"}


def contract_rejection(index: int, field: str, message: str) -> dict[str, object]:
    """The collector's answer when the event at `index` breaks the event contract (its shape
    is pinned against the real collector in tests/integration/test_sdk_delivery.py)."""
    return {
        "success": False,
        "accepted": 1,
        "rejected": [
            {
                "index": index,
                "messageId": "b",
                "reason": "the event does not follow the event contract",
                "errors": [{"field": field, "message": message}],
            }
        ],
        "warnings": [],
    }


def test_rejected_events_come_with_the_collector_field_errors() -> None:
    with serve(200, contract_rejection(1, "batch.1.track.event", "Field required")) as stub:
        result = HttpTransport("wk_1", stub.url).send(MESSAGES)
    assert result.rejected == {1: "the event does not follow the event contract"}
    assert [(e.field, e.message) for e in result.errors[1]] == [
        ("batch.1.track.event", "Field required")
    ]


def test_field_errors_of_another_shape_are_skipped() -> None:
    errors = ["bad", {"message": "no field"}, {"field": "batch.0.track.event"}]
    answer = {"rejected": [{"index": 0, "reason": "r", "errors": errors}, {"index": 1}]}
    with serve(200, answer) as stub:
        result = HttpTransport("wk_1", stub.url).send(MESSAGES)
    assert result.rejected == {0: "r", 1: "rejected"}
    assert [(e.field, e.message) for e in result.errors[0]] == [("batch.0.track.event", "invalid")]
    assert 1 not in result.errors


@pytest.mark.parametrize("sync", [False, True])
def test_on_error_and_the_receipt_name_the_fields_the_collector_found_wrong(sync: bool) -> None:
    failures: list[Failure] = []
    answer = contract_rejection(0, "batch.0.track.properties", "Input should be a valid dictionary")
    with serve(200, answer) as stub:
        client = Client("wk_1", stub.url, sync=sync, on_error=failures.append)
        receipt = client.track("u-1", "report_created")
        assert client.flush(timeout=30)
        client.shutdown(timeout=5)
    (failure,) = failures
    assert failure.kind is FailureKind.REJECTED
    assert failure.messages[0]["messageId"] == receipt.message_id
    assert [(e.field, e.message) for e in failure.errors] == [
        ("batch.0.track.properties", "Input should be a valid dictionary")
    ]
    expected = (
        "the event does not follow the event contract:"
        " batch.0.track.properties: Input should be a valid dictionary"
    )
    assert failure.reason == expected
    if sync:  # the receipt then means delivered, and says why not
        assert not receipt and receipt.error == expected


@pytest.mark.parametrize("body", [b"OK", {"success": True}, {"rejected": [{"index": 9}]}])
def test_a_plain_segment_style_200_delivers_everything(body: object) -> None:
    with serve(200, body) as stub:
        assert HttpTransport("wk_1", stub.url).send(MESSAGES).rejected == {}


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 415, 422])
def test_other_4xx_are_fatal(status: int) -> None:
    with serve(status, {"detail": "no"}) as stub, pytest.raises(FatalError, match="no"):
        HttpTransport("wk_1", stub.url).send(MESSAGES)
    assert len(stub.requests) == 1


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_429_and_5xx_are_retryable_with_retry_after(status: int) -> None:
    with (
        serve(status, {"detail": "later"}, {"Retry-After": "7"}) as stub,
        pytest.raises(RetryableError) as raised,
    ):
        HttpTransport("wk_1", stub.url).send(MESSAGES)
    assert raised.value.retry_after == 7


def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    with (
        serve(503, {}, {"Retry-After": when}) as stub,
        pytest.raises(RetryableError) as raised,
    ):
        HttpTransport("wk_1", stub.url).send(MESSAGES)
    assert raised.value.retry_after is not None and 100 < raised.value.retry_after <= 120


def test_a_refused_connection_is_retryable() -> None:
    # a port held bound but not listening refuses connections, and no other test can take it
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        with pytest.raises(RetryableError, match="network"):
            HttpTransport("wk_1", f"http://127.0.0.1:{held.getsockname()[1]}").send(MESSAGES)
