"""Every way a collector request can fail, each with one HTTP status, answered as RFC 7807 JSON."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from fastapi.responses import JSONResponse


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: answers echo senders' ids, and a lone surrogate in one
    (valid JSON, invalid UTF-8) must come back escaped rather than fail the answer."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode()


class ErrorKind(Enum):
    #                  status, title
    BAD_PAYLOAD = (400, "The request body is not a valid batch of events")
    BAD_KEY = (401, "Unknown or missing write key")
    TOO_LARGE = (413, "Request body too large")
    UNSUPPORTED_ENCODING = (415, "Unsupported Content-Encoding")
    RATE_LIMITED = (429, "Too many events for this write key; retry after Retry-After seconds")
    SINK_UNAVAILABLE = (503, "Events could not be stored; nothing was accepted, retry later")

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def title(self) -> str:
        return self.value[1]

    @property
    def code(self) -> str:
        return self.name.lower()


class CollectorError(Exception):
    def __init__(
        self,
        kind: ErrorKind,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        retry_after: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.errors = errors or []
        self.retry_after = retry_after
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://usage-stream.dev/problems/{self.kind.code.replace('_', '-')}",
            "title": self.kind.title,
            "status": self.kind.status,
            "detail": self.detail,
            # Segment's libraries log `code` and `message` from an error body; RFC 7807 allows
            # extension members, so both conventions are served.
            "code": self.kind.code,
            "message": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        return {**body, **self.extra}

    def response(self) -> AsciiJSONResponse:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        if self.kind is ErrorKind.BAD_KEY:
            headers["WWW-Authenticate"] = 'Basic realm="usage-stream"'
        return AsciiJSONResponse(
            self.body(),
            status_code=self.kind.status,
            headers=headers,
            media_type="application/problem+json",
        )
