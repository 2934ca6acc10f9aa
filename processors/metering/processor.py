"""The metering processor: a batch's partial rows in one insert, with its Kafka marks."""

from __future__ import annotations

from collections.abc import Sequence

from processors.metering.fold import COLUMNS, TABLE, fold_deliveries, to_rows
from processors.model import Delivery, offset_marks
from processors.storage.clickhouse import ClickHouse
from processors.storage.offset_marks import read_marks, uncounted
from schemas.config import ProductConfig


class MeteringProcessor:
    """Writes a batch's partial rows in one insert, marked with the batch's Kafka place, after
    dropping what an earlier life of the worker already wrote (its mark says how far it got)."""

    name = "metering"

    def __init__(self, clickhouse: ClickHouse, config: ProductConfig) -> None:
        self._ch = clickhouse
        self._config = config

    def write(self, originals: Sequence[Delivery]) -> None:
        if not self._config.meters or not originals:
            return
        todo = uncounted(originals, read_marks(self._ch, TABLE, originals))
        partials = fold_deliveries(self._config, todo)
        if not partials:
            return
        self._ch.insert_json(TABLE, to_rows(partials, offset_marks(todo)), COLUMNS)
