"""One collector request's way in: the write key, the rate, the body, each event judged, Kafka's
acknowledgement, and the answer. The routes in ingest.collector hand every call to `accept`."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from ingest import openapi, payload
from ingest.errors import AsciiJSONResponse, CollectorError, ErrorKind
from ingest.limits import Limits
from ingest.metrics import CollectorMetrics, events_in
from ingest.ratelimit import RateLimiter
from ingest.sink import EventSink, SinkUnavailable
from ingest.validation import Admission, admit

log = logging.getLogger(__name__)


def write_key_from_header(authorization: str | None) -> str | None:
    """Segment's convention: HTTP Basic auth with the write key as user name, no password."""
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None


class Intake:
    def __init__(
        self,
        sink: EventSink,
        tenants_by_write_key: Mapping[str, str],
        limits: Limits,
        metrics: CollectorMetrics,
        rate_limiter: RateLimiter | None,
    ) -> None:
        self._sink, self._tenants, self._limits = sink, tenants_by_write_key, limits
        self._metrics, self._rate_limiter = metrics, rate_limiter

    def _throttle(self, write_key: str) -> None:
        limiter = self._rate_limiter
        if limiter is not None and (wait := limiter.retry_after(write_key)) is not None:
            raise CollectorError(
                ErrorKind.RATE_LIMITED, "this write key sends too many events", retry_after=wait
            )

    async def _document(self, request: Request) -> tuple[str | None, Any]:
        """The header's write key (checked and throttled before the body is read: a throttled
        or unknown sender costs little) and the body as JSON."""
        max_body = self._limits.max_body_bytes
        header_key = write_key_from_header(request.headers.get("authorization"))
        if header_key is not None and header_key not in self._tenants:
            raise CollectorError(ErrorKind.BAD_KEY, "the write key is not known")
        if header_key is not None:
            self._throttle(header_key)
        if (length := request.headers.get("content-length", "")).isdigit() and (
            int(length) > max_body
        ):
            raise CollectorError(ErrorKind.TOO_LARGE, f"the body is larger than {max_body}")
        body = await payload.read_body(request.stream(), max_body)
        data = payload.decode(body, request.headers.get("content-encoding"), max_body)
        return header_key, payload.parse_json(data)

    def _admit(
        self,
        request: Request,
        received_at: datetime,
        header_key: str | None,
        document: Any,
        call: str | None,
    ) -> tuple[str, Admission, int]:
        """The tenant, its events judged one by one, and how many there were."""
        key = header_key or payload.write_key_from_body(document) or ""
        tenant = self._tenants.get(key)
        try:
            if tenant is None:
                raise CollectorError(
                    ErrorKind.BAD_KEY, "send your write key as the Basic-auth user"
                )
            if header_key is None:
                self._throttle(key)
            envelope = payload.envelope(document, call, self._limits)
        except CollectorError:
            self._metrics.received(request, events_in(document, call), tenant)
            raise
        if self._rate_limiter is not None:
            self._rate_limiter.charge(key, len(envelope.items))
        admission = admit(
            envelope.items,
            tenant=tenant,
            received_at=received_at,
            limits=self._limits,
            sent_at=envelope.sent_at,
            context=envelope.context,
            call=call,
        )
        return tenant, admission, len(envelope.items)

    async def accept(self, request: Request, call: str | None) -> JSONResponse:
        received_at = datetime.now(UTC)
        header_key, document = await self._document(request)
        tenant, admission, items = self._admit(request, received_at, header_key, document, call)
        metrics = self._metrics
        # Received in two parts, so that received = accepted + rejected holds event by event.
        if admission.rejected:
            metrics.received(request, len(admission.rejected), tenant)
            metrics.rejected(request, ErrorKind.BAD_PAYLOAD.code)
        metrics.received(request, len(admission.accepted), tenant)
        try:
            with metrics.producing():
                await self._sink.publish(admission.accepted, admission.rejected)
        except SinkUnavailable as exc:
            log.warning("refused %d events of %s: %s", items, tenant, exc)
            raise CollectorError(ErrorKind.SINK_UNAVAILABLE, str(exc), retry_after=1) from exc
        metrics.accepted(request)
        answer = openapi.Accepted(
            success=not admission.rejected,
            accepted=len(admission.accepted),
            rejected=[openapi.RejectedEvent(**r.public()) for r in admission.rejected],
            warnings=[openapi.EventNotice(**w.public()) for w in admission.warnings],
        )
        return AsciiJSONResponse(answer.model_dump(by_alias=True))
