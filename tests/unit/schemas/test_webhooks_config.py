"""Webhook endpoints in the product config: defaults, secrets masked, every mistake placed."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

import pytest

from processors.alerts.crossings import Kind
from schemas.config import ConfigError, load_config, parse_config
from schemas.webhooks import AlertKind, endpoint_names

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def hook(**fields: Any) -> dict[str, Any]:
    return {"tenant": "acme", "url": "https://hooks.example.com/usage", "secret": SECRET, **fields}


def problems(*webhooks: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config({"webhooks": list(webhooks)})
    return caught.value.problems


def test_a_complete_file_loads_with_its_defaults_and_the_secret_masked(tmp_path: Path) -> None:
    path = tmp_path / "usage-stream.toml"
    path.write_text(
        f"""
[[webhooks]]
tenant = "acme"
url = "https://hooks.example.com/usage?token=abc"
secret = "{SECRET}"

[[webhooks]]
tenant = "acme"
name = "ops"
url = "http://127.0.0.1:9999/in"
secret = "{SECRET}"
types = ["fired"]
retry_for = "PT30M"
timeout_seconds = 2.5

[[webhooks]]
tenant = "beta"
url = "https://beta.example.com/"
secret = "{SECRET}"
retry_for = 90
"""
    )
    config = load_config(path)
    first, ops, beta = config.webhooks
    assert first.types == ["fired", "resolved", "tier_changed"]
    assert first.retry_for == timedelta(hours=24) and first.timeout_seconds == 10
    assert first.secret.get_secret_value() == SECRET
    assert first.shown_url == "https://hooks.example.com/usage"  # no query: it carries tokens
    assert (ops.types, ops.retry_for, ops.timeout_seconds) == (
        ["fired"],
        timedelta(minutes=30),
        2.5,
    )
    assert beta.retry_for == timedelta(seconds=90)
    assert endpoint_names(config.webhooks) == ["0", "ops", "2"]
    dumped = json.dumps(config.model_dump(mode="json"))
    assert SECRET not in dumped and "**********" in dumped
    assert SECRET not in repr(config)


def test_retry_for_takes_iso_durations_and_seconds() -> None:
    for given, meant in [("P1D", timedelta(days=1)), ("PT0.5S", timedelta(seconds=0.5)),
                         ("45", timedelta(seconds=45)), (1.5, timedelta(seconds=1.5))]:  # fmt: skip
        (loaded,) = parse_config({"webhooks": [hook(retry_for=given)]}).webhooks
        assert loaded.retry_for == meant, given


def test_every_mistake_in_an_endpoint_is_reported_at_once_with_its_place() -> None:
    found = problems(
        hook(url="ftp://hooks.example.com/x", secret="not-a-secret", types=["fired", "paid"]),
        hook(secret="whsec_" + base64.b64encode(b"short").decode(), retry_for="a day"),
        hook(secret="whsec_%%%", retry_for=0, timeout_seconds=0, colour="red"),
        hook(tenant="", types=[], retry_for=True),
    )
    text = "\n".join(found)
    assert "webhooks[0].url: Value error, give an http:// or https:// URL with a host" in text
    assert "webhooks[0].secret: Value error, a Standard Webhooks secret is 'whsec_'" in text
    assert "it does not start with 'whsec_'" in text
    assert "webhooks[0].types[1]: Input should be 'fired', 'resolved' or 'tier_changed'" in text
    assert "webhooks[1].secret: Value error" in text and "this one has 5" in text
    assert 'webhooks[1].retry_for: Value error, give an ISO 8601 duration such as "PT24H"' in text
    assert "webhooks[2].secret: Value error" in text and "is not base64" in text
    assert "webhooks[2].retry_for: Value error, give more than 0" in text
    assert "webhooks[2].timeout_seconds: Input should be greater than 0" in text
    assert "webhooks[2].colour: Extra inputs are not permitted" in text
    assert "webhooks[3].tenant:" in text and "webhooks[3].types:" in text
    assert "webhooks[3].retry_for: Value error" in text  # `true` is not one second
    assert "not-a-secret" not in text and "%%%" not in text  # secrets never in messages


def test_endpoints_that_clash_are_placed_after_the_schema_passes() -> None:
    assert problems(
        hook(name="ops"),
        hook(name="ops", url="https://other.example.com/"),
        hook(name="audit"),
    ) == [
        "webhooks[1].name: 'ops' is the name of webhooks[0] too",
        "webhooks[2].url: webhooks[0] has the same tenant and URL (every alert would be sent"
        " twice)",
    ]


def test_a_name_is_a_label_value_not_a_url() -> None:
    assert any("webhooks[0].name:" in p for p in problems(hook(name="https://x.example.com")))


def test_the_kinds_are_the_alert_records_kinds() -> None:
    assert set(get_args(AlertKind)) == {k.value for k in Kind}
