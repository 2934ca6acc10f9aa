"""Every way a collector request can fail, each with one HTTP status, answered as RFC 7807 JSON."""

from __future__ import annotations

from enum import Enum
from typing import Any

from fastapi.responses import JSONResponse


class ErrorKind(Enum):
    #                  status, title
    BAD_PAYLOAD = (400, "The request body is not a valid batch of events")
    BAD_KEY = (401, "Unknown or missing write key")
    TOO_LARGE = (413, "Request body too large")
    UNSUPPORTED_ENCODING = (415, "Unsupported Content-Encoding")
    SINK_UNAVAILABLE = (503, "Events could not be stored; nothing was accepted, retry later")

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def title(self) -> str:
        return self.value[1]


class CollectorError(Exception):
    def __init__(
        self,
        kind: ErrorKind,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.errors = errors or []
        self.retry_after = retry_after

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {
            "type": f"https://usage-stream.dev/problems/{self.kind.name.lower().replace('_', '-')}",
            "title": self.kind.title,
            "status": self.kind.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        if self.kind is ErrorKind.BAD_KEY:
            headers["WWW-Authenticate"] = 'Basic realm="usage-stream"'
        return JSONResponse(
            body,
            status_code=self.kind.status,
            headers=headers,
            media_type="application/problem+json",
        )
