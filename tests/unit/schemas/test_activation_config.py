"""Activation rules and feature settings in the config file: parsed, checked, all errors at once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from schemas.activation import FIRST_EVENT, Features, Subject
from schemas.config import EXAMPLE_CONFIG, ConfigError, load_config, parse_config


def test_the_example_config_defines_rules_and_features() -> None:
    config = load_config(EXAMPLE_CONFIG)
    assert config.meters  # untouched by the new sections
    team = config.activation.rule("team_activated")
    assert team is not None and team.subject is Subject.ACCOUNT
    assert team.window == timedelta(days=14) and team.start == "signed_up"
    assert [(c.event, c.times) for c in team.all_of] == [
        ("report_created", 3), ("teammate_invited", 1)]  # fmt: skip
    collaborative = config.activation.rule("collaborative_reporting")
    assert collaborative is not None and collaborative.all_of[0].distinct_users == 3
    assert "signed_up" in config.features.exclude_events


def test_durations_and_defaults() -> None:
    rule = {"name": "r", "subject": "user", "window": "36h", "any_of": [{"event": "x"}]}
    config = parse_config({"activation": {"lateness": "90m", "rules": [rule]}})
    [parsed] = config.activation.rules
    assert parsed.window == timedelta(hours=36) and parsed.start == FIRST_EVENT
    assert config.activation.lateness == timedelta(minutes=90)
    assert config.model_dump(mode="json")["activation"]["rules"][0]["window"] == "36h"
    assert parse_config({}).activation.rules == []


def test_every_mistake_is_reported_at_once_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        """
[activation]
lateness = "soon"
timezone = "Mars/Olympus"

[[activation.rules]]
name = "Bad Name"
subject = "team"
window = "14d"
all_of = [{ event = "report_created", times = 0 }]

[[activation.rules]]
name = "users_of_a_user"
subject = "user"
window = "7d"
all_of = [{ event = "report_created", distinct_users = 3 }]

[[activation.rules]]
name = "nothing"
subject = "account"
window = "7d"

[[activation.rules]]
name = "too_many_days"
subject = "user"
window = "2d"
all_of = [{ event = "x", distinct_days = 5 }]

[features]
events = ["a"]
exclude_events = ["a"]
"""
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    report = "\n".join(caught.value.problems)
    for expected in (
        "activation.lateness",
        "activation.timezone: Value error, 'Mars/Olympus' is not an IANA time zone",
        "activation.rules[0].name",
        "activation.rules[0].subject",
        "activation.rules[0].all_of[0].times",
        "activation.rules[1]: Value error, distinct_users is for account rules",
        "activation.rules[2]: Value error, give at least one criterion",
        "activation.rules[3]: Value error, distinct_days = 5 can never be met in a window of 2d",
        "features: Value error, listed in both events and exclude_events: a",
    ):
        assert expected in report, f"{expected!r} not in:\n{report}"


def test_rule_names_are_unique() -> None:
    rule = {"name": "r", "subject": "user", "window": "1d", "all_of": [{"event": "x"}]}
    with pytest.raises(ConfigError, match="rule names must be unique: r defined twice"):
        parse_config({"activation": {"rules": [rule, rule]}})


@pytest.mark.parametrize(
    ("features", "event", "properties", "expected"),
    [
        (Features(), "report_created", {}, "report_created"),
        (Features(exclude_events=["signed_up"]), "signed_up", {}, None),
        (Features(events=["a"]), "b", {}, None),
        (Features(property="feature"), "feature_used", {"feature": "reports"}, "reports"),
        (Features(property="feature"), "export_csv", {}, "export_csv"),
        (Features(property="feature"), "x", {"feature": True}, "x"),  # not a name
    ],
)
def test_what_a_feature_is(
    features: Features, event: str, properties: dict[str, object], expected: str | None
) -> None:
    assert features.feature_of(event, properties) == expected
