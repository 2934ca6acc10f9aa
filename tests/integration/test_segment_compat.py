"""Segment's and RudderStack's own Python libraries, unchanged, against our collector: their calls
land in Kafka."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

from tests.conftest import Corner
from tests.harness import Service
from tests.integration.topic_reader import read_topic

pytestmark = pytest.mark.integration


def on_topic(corner: Corner, topic_env: str) -> dict[str, Any]:
    records = read_topic(corner.env["USAGE_STREAM_KAFKA_BOOTSTRAP"], corner.env[topic_env])
    return {json.loads(r.value)["messageId"]: r for r in records}


@pytest.mark.parametrize("sync_mode", [False, True])
def test_segments_library_works_unchanged(
    corner: Corner, collector: Service, sync_mode: bool
) -> None:
    errors: list[Any] = []
    segment = SegmentClient(
        corner.write_key,
        host=collector.url,
        gzip=True,
        sync_mode=sync_mode,
        upload_size=10,
        on_error=lambda error, items: errors.append((error, items)),
    )
    calls = [
        segment.identify("user-1", {"email": "a@example.com", "plan": "team"}),
        segment.group("user-1", "acct-1", {"name": "Acme"}),
        *(
            segment.track("user-1", "report_created", {"charts": n}, {"groupId": "acct-1"})
            for n in range(5)
        ),
        segment.track(anonymous_id="anon-7", event="signed_up"),
    ]
    page = segment.page("user-1", name="Pricing")  # not stored by this product
    if not sync_mode:  # (the library's shutdown fails in its own sync mode: nothing to flush)
        segment.shutdown()
    assert all(ok for ok, _ in calls) and errors == []
    sent = {message["messageId"]: message for _, message in calls}

    landed = on_topic(corner, "USAGE_STREAM_EVENTS_TOPIC")
    assert set(sent) <= set(landed)
    for message_id, message in sent.items():
        event = json.loads(landed[message_id].value)
        assert event["tenant"] == corner.tenant and event["type"] == message["type"]
        assert event["context"]["library"]["name"] == "analytics-python"
    track = json.loads(landed[calls[2][1]["messageId"]].value)
    assert track["account"] == "acct-1"  # Segment's context.groupId names the account
    assert track["properties"] == {"charts": 0}
    assert json.loads(landed[calls[0][1]["messageId"]].value)["traits"]["plan"] == "team"
    # the page call was answered 200 (Segment's libraries see success) and parked with a reason
    parked = on_topic(corner, "USAGE_STREAM_INVALID_TOPIC")
    assert b"page calls are not supported" in dict(parked[page[1]["messageId"]].headers)["reason"]


def test_segments_library_reports_a_wrong_write_key(corner: Corner, collector: Service) -> None:
    errors: list[Any] = []
    segment = SegmentClient(
        "wk_not_a_key",
        host=collector.url,
        on_error=lambda error, items: errors.append((error, items)),
        max_retries=1,
    )
    segment.track("user-1", "report_created")
    segment.shutdown()
    ((error, items),) = errors
    # our problem body carries Segment's `code` and `message`, so its error reads well
    assert (error.status, error.code) == (401, "bad_key")
    assert "write key" in error.message and len(items) == 1


def test_rudderstacks_library_works_unchanged_traits_included(
    corner: Corner, collector: Service
) -> None:
    errors: list[Any] = []
    rudder = RudderClient(
        corner.write_key,
        host=collector.url,
        gzip=True,
        upload_size=10,
        on_error=lambda error, items: errors.append((error, items)),
    )
    calls = [
        rudder.identify("user-2", {"email": "b@example.com", "plan": "scale"}),
        rudder.track("user-2", "report_created", {"charts": 2}, {"groupId": "acct-2"}),
    ]
    rudder.shutdown()
    assert all(ok for ok, _ in calls) and errors == []
    landed = on_topic(corner, "USAGE_STREAM_EVENTS_TOPIC")
    identify = json.loads(landed[calls[0][1]["messageId"]].value)
    # RudderStack sends an identify's traits as context.traits: they are its traits
    assert identify["traits"] == {"email": "b@example.com", "plan": "scale"}
    assert json.loads(landed[calls[1][1]["messageId"]].value)["properties"] == {"charts": 2}
