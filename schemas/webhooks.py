"""Webhook endpoints (`[[webhooks]]`): where a tenant's usage alerts are POSTed, signed the
Standard Webhooks way, and for how long a failing delivery is tried again."""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from schemas.filters import Name

# The kinds of usage-alert records (processors.alerts.crossings.Kind has the same values)
AlertKind = Literal["fired", "resolved", "tier_changed"]
ALERT_KINDS: tuple[AlertKind, ...] = ("fired", "resolved", "tier_changed")

SECRET_PREFIX = "whsec_"
# The Standard Webhooks spec asks for secrets of 24 to 64 random bytes
SECRET_BYTES = (24, 64)
# A dead endpoint is given up on after this at most; the delivery stays in the log, re-sendable
MAX_RETRY_FOR = timedelta(days=30)

_TIMEDELTA = TypeAdapter(timedelta)
_DURATION_HINT = 'give an ISO 8601 duration such as "PT24H" or "P1D", or a number of seconds'


def _duration(value: Any) -> timedelta:
    """An ISO 8601 duration ("PT30M") or a number of seconds (30, 1.5, "30")."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):  # TOML `true` is not one second
        raise ValueError(f"{_DURATION_HINT}, not {value!r}")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        try:
            return timedelta(seconds=float(value))
        except ValueError:
            pass
        try:
            return _TIMEDELTA.validate_python(value.strip())
        except ValidationError:
            pass
    raise ValueError(f"{_DURATION_HINT}, not {value!r}")


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class Webhook(BaseModel):
    """One endpoint of one tenant. Every usage-alert record of the tenant whose kind is in
    `types` is POSTed to `url`, signed with `secret`, and tried again with backoff for
    `retry_for`; after that the delivery is `failed` (listed, re-sendable)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str = Field(min_length=1, max_length=255)
    url: str = Field(max_length=2048)
    # `whsec_` and base64 of 24 to 64 random bytes, as Standard Webhooks libraries expect
    secret: SecretStr
    # the endpoint's name in metrics and the delivery log; default: its place in [[webhooks]]
    # ("0", "1", …), so give one to keep them apart when the list is reordered
    name: Name | None = None
    types: list[AlertKind] = Field(default_factory=lambda: list(ALERT_KINDS), min_length=1)
    retry_for: Duration = timedelta(hours=24)
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"give an http:// or https:// URL with a host, not {url!r}")
        if any(c.isspace() for c in url) or parts.fragment:
            raise ValueError("a URL without spaces or a #fragment")
        return url

    @field_validator("secret")
    @classmethod
    def _standard_secret(cls, secret: SecretStr) -> SecretStr:
        text = secret.get_secret_value()
        low, high = SECRET_BYTES
        hint = f"a Standard Webhooks secret is {SECRET_PREFIX!r} then base64 of {low}-{high} bytes"
        if not text.startswith(SECRET_PREFIX):
            raise ValueError(f"{hint}: it does not start with {SECRET_PREFIX!r}")
        try:
            key = base64.b64decode(text.removeprefix(SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{hint}: what follows {SECRET_PREFIX!r} is not base64") from None
        if not low <= len(key) <= high:
            raise ValueError(f"{hint}: this one has {len(key)}")
        return secret

    @field_validator("types")
    @classmethod
    def _types_once(cls, types: list[AlertKind]) -> list[AlertKind]:
        twice = sorted({t for t in types if types.count(t) > 1})
        if twice:
            raise ValueError(f"a type is given twice: {', '.join(twice)}")
        return types

    @field_validator("retry_for")
    @classmethod
    def _retry_for_in_range(cls, retry_for: timedelta) -> timedelta:
        if not timedelta(0) < retry_for <= MAX_RETRY_FOR:
            raise ValueError(f"give more than 0 and at most {MAX_RETRY_FOR.days} days")
        return retry_for

    @property
    def shown_url(self) -> str:
        """The URL without credentials, query or fragment: what logs and the delivery log
        show (a query string often carries a token)."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"


def endpoint_names(webhooks: list[Webhook]) -> list[str]:
    """Each endpoint's name: the configured one, else its place in the list. Configured names
    start with a letter, so they never clash with a place."""
    return [w.name or str(i) for i, w in enumerate(webhooks)]


def webhook_problems(webhooks: list[Webhook]) -> list[str]:
    """What the endpoints make wrong in each other, each with its place; every one at once."""
    problems = []
    names: dict[str, int] = {}
    targets: dict[tuple[str, str], int] = {}
    for i, webhook in enumerate(webhooks):
        if webhook.name is not None:
            if webhook.name in names:
                problems.append(
                    f"webhooks[{i}].name: {webhook.name!r} is the name of"
                    f" webhooks[{names[webhook.name]}] too"
                )
            names.setdefault(webhook.name, i)
        target = (webhook.tenant, webhook.url)
        if target in targets:
            problems.append(
                f"webhooks[{i}].url: webhooks[{targets[target]}] has the same tenant and URL"
                " (every alert would be sent twice)"
            )
        targets.setdefault(target, i)
    return problems
