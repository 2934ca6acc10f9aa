"""The metering processor: a batch's partial rows in one insert, with its Kafka marks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from processors.metering.fold import COLUMNS, TABLE, Key, Partial, fold_deliveries, to_rows
from processors.model import Delivery, offset_marks
from processors.storage.clickhouse import ClickHouse
from processors.storage.offset_marks import read_marks, uncounted
from schemas.config import ProductConfig


class FoldWatcher(Protocol):
    """What keeps state from the metering fold (the alert watch): told before a batch's rows
    are written, so what it loads is without them, and handed them once they are."""

    def before(self, originals: Sequence[Delivery]) -> None: ...

    def after(self, originals: Sequence[Delivery], partials: dict[Key, Partial]) -> None: ...


class MeteringProcessor:
    """Writes a batch's partial rows in one insert, marked with the batch's Kafka place, after
    dropping what an earlier life of the worker already wrote (its mark says how far it got)."""

    name = "metering"

    def __init__(
        self, clickhouse: ClickHouse, config: ProductConfig, watcher: FoldWatcher | None = None
    ) -> None:
        self._ch = clickhouse
        self._config = config
        self._watcher = watcher

    def write(self, originals: Sequence[Delivery]) -> None:
        if not self._config.meters:
            return
        if self._watcher is not None:
            self._watcher.before(originals)
        todo = uncounted(originals, read_marks(self._ch, TABLE, originals)) if originals else []
        partials = fold_deliveries(self._config, todo)
        if partials:
            self._ch.insert_json(TABLE, to_rows(partials, offset_marks(todo)), COLUMNS)
        if self._watcher is not None:
            # a retry after a failed send folds nothing new (the rows are written): the
            # watcher sends what it still owes
            self._watcher.after(todo, partials)
