"""The product configuration file (TOML): meters, billing periods, and what builds on them."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.activation import Activation, Features
from schemas.health import Health
from schemas.meters import Meter
from schemas.plans import Alerts, Plan, plan_problems
from schemas.webhooks import Webhook, webhook_problems
from schemas.zones import ZoneName

# The commented example: every field, the demo's meters and rules. Shipped as package data, so
# `usage-stream up` and the bench find it in any installation, not only in a checkout.
EXAMPLE_CONFIG = Path(str(files("schemas").joinpath("usage-stream.example.toml")))


class Billing(BaseModel):
    """Billing periods are calendar months in `timezone`; a period is final `grace_hours` after
    it ends. Events received later are reported as adjustments, never folded in silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: ZoneName = "UTC"
    grace_hours: float = Field(default=72.0, ge=0, le=24 * 90)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def grace(self) -> timedelta:
        return timedelta(hours=self.grace_hours)


class ProductConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    billing: Billing = Field(default_factory=Billing)
    meters: list[Meter] = Field(default_factory=list)
    # activation rules and feature usage: see schemas.activation
    activation: Activation = Field(default_factory=Activation)
    features: Features = Field(default_factory=Features)
    # the account health score and its at-risk threshold: see schemas.health
    health: Health | None = None
    # what each plan includes and where it alerts, and how alerts re-arm: see schemas.plans
    plans: list[Plan] = Field(default_factory=list)
    alerts: Alerts = Field(default_factory=Alerts)
    # where each tenant's usage alerts are POSTed as signed webhooks: see schemas.webhooks
    webhooks: list[Webhook] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_unique(self) -> ProductConfig:
        names = [m.name for m in self.meters]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"meter names must be unique: {', '.join(twice)} defined twice")
        return self

    def meter(self, name: str) -> Meter | None:
        return next((m for m in self.meters if m.name == name), None)

    def plan(self, name: str | None) -> Plan | None:
        """The plan so named, else the default plan (None when there are no plans)."""
        named = next((p for p in self.plans if p.name == name), None)
        return named or next((p for p in self.plans if p.default), None)


class ConfigError(Exception):
    """Every problem of a config file at once, each prefixed by where it is."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = str(path)
        self.problems = problems

    def report(self) -> str:
        lines = [f"{self.path} is not valid ({len(self.problems)} problems):"]
        return "\n".join([*lines, *(f"  {p}" for p in self.problems)])


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def parse_config(data: dict[str, Any], source: Path | str = "<config>") -> ProductConfig:
    """The config, or a ConfigError listing every problem: first the sections' own, then what
    the sections make wrong in each other (a plan naming a meter there is not)."""
    try:
        config = ProductConfig.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{_where(err['loc'])}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        ]
        raise ConfigError(source, problems) from None
    problems = plan_problems(config.plans, {m.name for m in config.meters})
    problems += webhook_problems(config.webhooks)
    if problems:
        raise ConfigError(source, problems)
    return config


def load_config(path: Path | str | None) -> ProductConfig:
    """The config at `path`, or an empty one (no meters) when no file is configured."""
    if path is None or str(path) == "":
        return ProductConfig()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(path, ["the file does not exist"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    return parse_config(data, path)
