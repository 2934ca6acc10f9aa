"""The bulk consumer leans on faust-streaming internals: fail loudly when they change.

processors.worker.bulk replaces `Consumer._drain_messages` (after the logic of `getmany`) and
`App._new_transport`, and calls `_wait_next_records`, `_commit_offsets`, `perform_seek` and
`_to_message`; the worker's stop deadline overrides mode's `Worker._schedule_shutdown`. They
were read in faust-streaming 0.15.3 and mode-streaming 0.7.1, which pyproject.toml pins. A new
version must be read again: compare its versions of these methods with the module, adapt it,
then record the new fingerprints here. (The module's `rewind` reads aiokafka's partition
positions: tests/integration/test_bulk_put_back.py runs it against the real broker.)
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder
from faust.app import base as app_base
from faust.transport import consumer as consumer_base
from faust.transport.drivers import aiokafka as driver
from mode import worker as mode_worker

from processors.worker.app import AppConfig, faust_app
from processors.worker.bulk import BulkConsumer, BulkTransport

VERIFIED = "0.15.3"
FINGERPRINTS = {
    "Consumer._drain_messages": (consumer_base.Consumer._drain_messages, "44a2500309e83c63"),
    "Consumer.getmany": (consumer_base.Consumer.getmany, "4b168d84882a70d6"),
    "Consumer._wait_next_records": (
        consumer_base.Consumer._wait_next_records,
        "6218e1969a636b3f",
    ),
    "Consumer._commit_offsets": (consumer_base.Consumer._commit_offsets, "1a69799041188441"),
    "Consumer.perform_seek": (consumer_base.Consumer.perform_seek, "0e8c130ff4b0afd8"),
    "App._new_transport": (app_base.App._new_transport, "42db531312dd776f"),
    "aiokafka Consumer._to_message": (driver.Consumer._to_message, "7c24f6511b2fcef7"),
    # processors.worker.process.WorkerProcess puts a deadline on stopping through this one
    "mode Worker._schedule_shutdown": (mode_worker.Worker._schedule_shutdown, "1a6a5dfc88c2298b"),
    # processors.activation.tables.send_batches writes the changelogs through these
    "aiokafka Producer._ensure_producer": (driver.Producer._ensure_producer, "5592a4bbdf251325"),
    "AIOKafkaProducer.create_batch": (AIOKafkaProducer.create_batch, "c4efda4bb7a09741"),
    "AIOKafkaProducer.send_batch": (AIOKafkaProducer.send_batch, "bf42b0f0c5c0646d"),
    "BatchBuilder.append": (BatchBuilder.append, "657d76f55157d9ca"),
}


def test_the_verified_faust_version_is_installed() -> None:
    assert faust.__version__ == VERIFIED


@pytest.mark.parametrize("name", sorted(FINGERPRINTS))
def test_the_upstream_methods_are_the_ones_read(name: str) -> None:
    method, fingerprint = FINGERPRINTS[name]
    source = inspect.getsource(method)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == fingerprint, (
        f"{name} changed: read it again against processors/worker/bulk.py and"
        " processors/activation/tables.py"
    )


def test_the_worker_app_consumes_through_the_bulk_consumer(tmp_path: Any) -> None:
    app = faust_app(
        AppConfig("bulk-test", "127.0.0.1:1", "events", "events.invalid", datadir=str(tmp_path))
    )
    assert isinstance(app.transport, BulkTransport)
    assert app.transport.Consumer is BulkConsumer
