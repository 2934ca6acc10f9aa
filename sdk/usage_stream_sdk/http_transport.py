"""The SDK's HTTP transport: Segment's batch endpoint, Basic auth, gzip, when to retry."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import datetime
from email.message import Message
from typing import Any, NoReturn

from usage_stream_sdk.messages import VERSION, iso, utc_now
from usage_stream_sdk.retry import parse_retry_after
from usage_stream_sdk.transport import FatalError, FieldError, RetryableError, SendResult


class HttpTransport:
    """POSTs a batch to `host`/v1/batch. 2xx delivers it (less the events the collector lists
    as rejected); 429, 5xx and network errors are worth retrying; any other 4xx is not."""

    def __init__(
        self,
        write_key: str,
        host: str = "http://127.0.0.1:8080",
        *,
        gzip: bool = True,
        timeout: float = 10.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if not write_key:
            raise ValueError("a write key is required")
        self.url = host.rstrip("/") + "/v1/batch"
        self._auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
        self._gzip = gzip
        self._timeout = timeout
        self._clock = clock

    def body(self, messages: Sequence[bytes]) -> bytes:
        """The batch envelope; sentAt is stamped per attempt, so the collector can correct the
        event times for this machine's clock skew however late a retry goes out."""
        sent_at = json.dumps(iso(self._clock())).encode()
        return b'{"batch":[' + b",".join(messages) + b'],"sentAt":' + sent_at + b"}"

    def headers(self) -> dict[str, str]:
        headers = {
            "Authorization": self._auth,
            "Content-Type": "application/json",
            "User-Agent": f"usage-stream-python/{VERSION}",
        }
        if self._gzip:
            headers["Content-Encoding"] = "gzip"
        return headers

    def send(self, messages: Sequence[bytes]) -> SendResult:
        body = self.body(messages)
        if self._gzip:
            body = gzip.compress(body, compresslevel=6, mtime=0)
        request = urllib.request.Request(self.url, data=body, method="POST", headers=self.headers())
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return _delivered(response.read(), len(messages))
        except urllib.error.HTTPError as exc:
            status, headers, raw = exc.code, exc.headers, _read(exc)
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
            raise RetryableError(f"network error: {exc}") from exc
        _refused(status, headers, raw)

    def close(self) -> None:
        """Nothing to release: each batch is one request on its own connection."""


def _read(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read()
    except (OSError, http.client.HTTPException):
        return b""


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _delivered(raw: bytes, count: int) -> SendResult:
    """The collector's `rejected` list, each entry with its reason and field errors; a plain
    Segment server sends none."""
    answer = _json(raw)
    listed = answer.get("rejected") if isinstance(answer, dict) else None
    rejected: dict[int, str] = {}
    errors: dict[int, tuple[FieldError, ...]] = {}
    for entry in listed if isinstance(listed, list) else ():
        index = entry.get("index") if isinstance(entry, dict) else None
        if isinstance(index, int) and 0 <= index < count:
            rejected[index] = str(entry.get("reason") or "rejected")
            if found := _field_errors(entry.get("errors")):
                errors[index] = found
    return SendResult(rejected, errors)


def _field_errors(listed: Any) -> tuple[FieldError, ...]:
    """The entry's `errors` ({field, message} objects); what has another shape is skipped."""
    found = []
    for error in listed if isinstance(listed, list) else ():
        if isinstance(error, dict) and error.get("field") is not None:
            found.append(FieldError(str(error["field"]), str(error.get("message") or "invalid")))
    return tuple(found)


def _refused(status: int, headers: Message, raw: bytes) -> NoReturn:
    answer = _json(raw)
    detail = answer.get("detail") if isinstance(answer, dict) else None
    reason = f"HTTP {status}: {detail or raw[:200].decode(errors='replace')}"
    if status == 429 or 500 <= status <= 599:
        raise RetryableError(reason, parse_retry_after(headers.get("Retry-After")))
    raise FatalError(reason)
