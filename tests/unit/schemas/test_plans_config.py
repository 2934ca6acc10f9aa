"""Plans in the product config: checked against the meters, every problem at once, placed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from schemas.config import ConfigError, parse_config

METERS = [
    {"name": "api_calls", "event": "api_call", "aggregation": "count"},
    {"name": "contacts", "event": "contact_added", "aggregation": "count"},
]


def config(plans: list[dict[str, Any]]) -> dict[str, Any]:
    return {"meters": METERS, "plans": plans}


def test_a_complete_plan_loads() -> None:
    loaded = parse_config(
        config(
            [
                {"name": "free", "default": True, "included": {"api_calls": 1000},
                 "thresholds": [{"meter": "api_calls", "percent": 80},
                                {"meter": "api_calls", "percent": 100},
                                {"meter": "contacts", "quantity": 900}],
                 "tiers": {"meter": "contacts", "ladder": [{"name": "starter", "from": 0},
                                                           {"name": "pro", "from": 1000}]}},
                {"name": "team", "included": {"api_calls": 50000}},
            ]
        )
    )  # fmt: skip
    free = loaded.plan("free")
    assert free is not None and free.included == {"api_calls": Decimal(1000)}
    assert [t.key for t in free.thresholds] == ["80%", "100%", "900"]
    assert loaded.plan("nope") == free and loaded.plan(None) == free  # the default
    assert loaded.plan("team") is not None and loaded.alerts.hysteresis_percent == 5


def test_every_problem_with_the_meters_is_reported_at_once_with_its_place() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            config(
                [
                    {"name": "free", "default": True, "included": {"api_cals": 1000},
                     "thresholds": [{"meter": "api_calls", "percent": 80},
                                    {"meter": "seats", "quantity": 3}],
                     "tiers": {"meter": "contact", "ladder": [{"name": "a", "from": 0},
                                                              {"name": "b", "from": 10}]}},
                    {"name": "free", "default": True},
                ]
            )
        )  # fmt: skip
    problems = caught.value.problems
    assert problems == [
        "plans: the plan name 'free' is given twice",
        "plans: exactly one plan must have `default = true` (found 2)",
        "plans[0].included.api_cals: no meter named so (meters: api_calls, contacts)",
        "plans[0].thresholds[0].percent: the plan includes no quantity of 'api_calls' to take"
        " a percent of (add it to `included`, or give `quantity`)",
        "plans[0].thresholds[1].meter: no meter named 'seats' (api_calls, contacts)",
        "plans[0].tiers.meter: no meter named 'contact' (api_calls, contacts)",
    ]


def test_mistakes_inside_a_plan_are_placed_by_the_schema() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            config(
                [
                    {"name": "free", "default": True,
                     "thresholds": [{"meter": "api_calls"},
                                    {"meter": "api_calls", "percent": 80, "quantity": 5}],
                     "tiers": {"meter": "contacts", "ladder": [{"name": "a", "from": 5},
                                                               {"name": "b", "from": 1}]}},
                ]
            )
        )  # fmt: skip
    text = "\n".join(caught.value.problems)
    assert "plans[0].thresholds[0]" in text and "plans[0].thresholds[1]" in text
    assert "either `percent` or `quantity`" in text
    assert "plans[0].tiers" in text and "the first tier starts `from` 0" in text
