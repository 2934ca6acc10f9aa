"""Times the read API cannot answer for get a 400 naming the accepted range, never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from processors.api.app import create_read_api
from processors.storage.clickhouse import ClickHouse
from schemas.config import EXAMPLE_CONFIG, load_config

pytestmark = pytest.mark.integration
OLD, LATE, NOW = "0999-12-31T00:00:00Z", "9999-12-31T00:00:00Z", "2026-03-01T00:00:00Z"


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/events/counts?received_since={OLD}",
        f"/v1/meters/api_calls/usage?from={OLD}&to={NOW}",
        f"/v1/meters/api_calls/usage?from={NOW}&to={LATE}",
        "/v1/usage/export?period=9999-12",
        "/v1/usage/export?period=0999-01",
        "/v1/usage/export?period=1969-12",
        f"/v1/features/usage?from={OLD}&to={NOW}",
        "/v1/features/report_created/adoption?days=30&to=1000-03-01T00:00:00Z",
        "/v1/features/report_created/adoption?days=366&to=1970-06-01T00:00:00Z",
        f"/v1/accounts/acct-1/features?to={LATE}",
        "/v1/activations/cohorts?rule={rule}&from=" + OLD,
    ],
)
def test_out_of_range_times_are_a_400_with_the_range(clickhouse: ClickHouse, path: str) -> None:
    product = load_config(EXAMPLE_CONFIG)
    client = TestClient(create_read_api(clickhouse, product, {"rk": "acme"}, lambda: True))
    response = client.get(
        path.format(rule=product.activation.rules[0].name),
        headers={"Authorization": "Bearer rk"},
    )
    assert response.status_code == 400, response.text
    assert "out of range" in response.text and "1970-01-01" in response.text


def test_times_inside_the_range_are_answered(clickhouse: ClickHouse) -> None:
    product = load_config(EXAMPLE_CONFIG)
    client = TestClient(create_read_api(clickhouse, product, {"rk": "acme"}, lambda: True))
    bearer = {"Authorization": "Bearer rk"}
    for path in (
        "/v1/usage/export?period=1970-01",
        f"/v1/meters/api_calls/usage?from=1970-01-01T00:00:00Z&to={NOW}",
        "/v1/events/counts?received_since=2199-12-31T00:00:00Z",
    ):
        assert client.get(path, headers=bearer).status_code == 200, path


@pytest.mark.parametrize(
    "path",
    [
        # a UTC offset that carries the time past year 1 once converted
        "/v1/meters/api_calls/usage?from=0001-01-01T00:22:26%2B02:01&to=" + NOW,
        "/v1/events/counts?received_since=9999-12-31T23:59:59-02:00",
        # a number is not a time: seconds or milliseconds, it would be a guess
        "/v1/events/counts?received_since=0.5",
        "/v1/features/report_created/adoption?to=1700000000",
    ],
)
def test_times_that_are_not_times_are_a_422_naming_the_parameter(
    clickhouse: ClickHouse, path: str
) -> None:
    product = load_config(EXAMPLE_CONFIG)
    client = TestClient(create_read_api(clickhouse, product, {"rk": "acme"}, lambda: True))
    response = client.get(path, headers={"Authorization": "Bearer rk"})
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"][0] == "query" and error["loc"][1] in path


def cursor_of(value: object) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize(
    "query",
    [
        "period=2026-1",  # YYYY-MM only
        "period=2026-1-1",
        *(
            f"period=2026-03&cursor={cursor_of(forged)}"
            for forged in (
                [-10, 0],
                [0, 1e400],
                [0, 10**30],
                [-1, 0],
                [0, -1],
                [0.5, 0],
                [True, True],
                [99, 0],
                {"a": 1},
                "x",
            )
        ),
        "period=2026-03&cursor=not-base64!",
    ],
)
def test_a_period_or_cursor_not_given_out_is_a_400(clickhouse: ClickHouse, query: str) -> None:
    product = load_config(EXAMPLE_CONFIG)
    client = TestClient(create_read_api(clickhouse, product, {"rk": "acme"}, lambda: True))
    response = client.get(f"/v1/usage/export?{query}", headers={"Authorization": "Bearer rk"})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")


def test_a_missing_and_an_unknown_read_key_are_told_apart(clickhouse: ClickHouse) -> None:
    product = load_config(EXAMPLE_CONFIG)
    client = TestClient(create_read_api(clickhouse, product, {"rk": "acme"}, lambda: True))
    missing = client.get("/v1/meters")
    unknown = client.get("/v1/meters", headers={"Authorization": "Bearer rk-typo"})
    assert (missing.status_code, unknown.status_code) == (401, 401)
    assert "send a read key" in missing.json()["detail"]
    assert "not known" in unknown.json()["detail"]
