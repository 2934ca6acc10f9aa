"""The account health score: which components, how they weigh, where an account turns at risk."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Weights(BaseModel):
    """How much each component counts; 0 leaves it out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recency: float = Field(default=1.0, ge=0, le=100)
    frequency: float = Field(default=1.0, ge=0, le=100)
    breadth: float = Field(default=1.0, ge=0, le=100)
    trend: float = Field(default=1.0, ge=0, le=100)
    activation: float = Field(default=1.0, ge=0, le=100)


class Health(BaseModel):
    """`[health]`: each account's score, 0-100, from its feature use (what `[features]`
    counts) and its activations.

    recency: 100 on the day it last used a feature, down to 0 after `recency_days` without;
    frequency: the share of the last `active_days` days with feature use; breadth: features used
    in those days / features any account of the tenant used; trend: the last 7 days' feature
    events / those of the 14 days (50 is flat); activation: the share of activation rules met.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # an account whose score goes below this (or back to it or above) is reported once
    threshold: float = Field(default=40.0, ge=0, le=100)
    recency_days: int = Field(default=14, ge=1, le=366)
    active_days: int = Field(default=30, ge=1, le=366)
    # accounts without feature use for this long are no longer scored (churned, not at risk)
    forget_days: int = Field(default=90, ge=1, le=3660)
    # how often the worker looks for accounts that crossed the threshold
    check_seconds: float = Field(default=300.0, ge=0.1, le=86400)
    weights: Weights = Field(default_factory=Weights)

    @model_validator(mode="after")
    def _reaches_back_far_enough(self) -> Health:
        if self.forget_days < max(self.recency_days, self.active_days, 14):
            raise ValueError(
                "`forget_days` must cover `recency_days`, `active_days` and the trend's 14 days"
            )
        if not any(self.weights.model_dump().values()):
            raise ValueError("at least one weight must be above 0")
        return self
