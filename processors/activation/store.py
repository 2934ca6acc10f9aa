"""Activation outcomes and window starts into ClickHouse, idempotently."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from processors.activation.records import (
    OUTCOME_COLUMNS,
    START_COLUMNS,
    Outcome,
    Start,
    outcome_row,
    start_row,
)
from processors.storage.clickhouse import ClickHouse


class ActivationStore(Protocol):
    def write(self, outcomes: Sequence[Outcome], starts: Sequence[Start]) -> None:
        """Hold every outcome once and every start at least once; raise on failure (the caller
        retries the same call, which must then change nothing already written)."""
        ...


class ClickHouseActivationStore:
    """Outcomes: the ids already held are looked up by subject (the sort key) and left out, so
    a retry or a re-decision after a crash inserts nothing twice. Only the worker owning a
    subject's partition decides it, so check-then-insert does not race. Starts need no check:
    readers take the earliest start per subject."""

    def __init__(self, clickhouse: ClickHouse) -> None:
        self._ch = clickhouse

    def write(self, outcomes: Sequence[Outcome], starts: Sequence[Start]) -> None:
        if starts:
            self._ch.insert("activation_starts", [start_row(s) for s in starts], START_COLUMNS)
        if not outcomes:
            return
        held = self.held(outcomes)
        new = [o for o in outcomes if o.id not in held]
        if new:
            self._ch.insert("activations", [outcome_row(o) for o in new], OUTCOME_COLUMNS)

    def held(self, outcomes: Sequence[Outcome]) -> set[str]:
        subjects = list({(o.tenant, o.rule, o.account, o.user) for o in outcomes})
        rows = self._ch.query(
            "SELECT id FROM activations WHERE (tenant, rule, account, user_id)"
            " IN {subjects:Array(Tuple(String, String, String, String))}",
            {"subjects": subjects},
        )
        return {str(r[0]) for r in rows}
