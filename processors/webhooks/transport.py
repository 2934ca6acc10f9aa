"""One POST to an endpoint, whatever it comes to: an Outcome, never an exception."""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from typing import Any

from processors.webhooks.model import Outcome

# What is kept of an error answer's body: enough to say why, not a page of HTML
ERROR_BODY_CHARS = 200
# An answer's body is read (so the connection ends cleanly) up to this, then dropped
MAX_READ_BYTES = 64 * 1024


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer like any other non-2xx: a failure, tried again. Following it
    would turn the POST into a GET or send the signed body somewhere not configured."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
    """POST `body` to `url`; `timeout` seconds for connecting and for each read."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    started = time.perf_counter()

    def took() -> float:
        return time.perf_counter() - started

    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(MAX_READ_BYTES)
            return Outcome(response.status, "", took())
    except urllib.error.HTTPError as exc:
        with exc:
            text = exc.read(MAX_READ_BYTES).decode(errors="replace").strip()
        said = f": {' '.join(text.split())[:ERROR_BODY_CHARS]}" if text else ""
        return Outcome(exc.code, f"HTTP {exc.code}{said}", took(), exc.headers.get("Retry-After"))
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            return Outcome(0, f"no answer within {timeout:g} s", took())
        return Outcome(0, f"could not connect: {exc.reason}", took())
    except TimeoutError:
        return Outcome(0, f"no answer within {timeout:g} s", took())
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Outcome(0, f"{type(exc).__name__}: {exc}", took())
