"""Creating the Kafka topics the stream needs, with the configured partition count."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from usage_stream_sdk.retry import Backoff

log = logging.getLogger(__name__)
T = TypeVar("T")


def ensure_topics(bootstrap: str, names: list[str], partitions: int) -> list[str]:
    """Create the missing topics; returns those created. Existing topics are left as they are."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=10000)
    try:
        missing = [name for name in names if name not in set(admin.list_topics())]
        created = []
        for name in missing:
            try:
                admin.create_topics([NewTopic(name, partitions, replication_factor=-1)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()


def partition_count(bootstrap: str, topic: str) -> int:
    """How many partitions `topic` has; raises if it does not exist."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=10000)
    try:
        [description] = admin.describe_topics([topic])
        partitions = description.get("partitions") or []
        if description.get("error_code") or not partitions:
            raise RuntimeError(f"topic {topic!r} does not exist")
        return len(partitions)
    finally:
        admin.close()


def ensure_copartitioned(bootstrap: str, name: str, like: str, compacted: bool = False) -> int:
    """Create `name` with as many partitions as `like` (compacted if asked) or check that it has
    as many: a faust table's changelog must be partitioned like the topic its agent reads."""
    partitions = partition_count(bootstrap, like)
    if ensure_topics_with_config(bootstrap, name, partitions, compacted):
        return partitions
    found = partition_count(bootstrap, name)
    if found != partitions:
        raise RuntimeError(
            f"topic {name!r} has {found} partitions but {like!r} has {partitions}: they must"
            f" match (recreate {name!r}, or give it another name)"
        )
    return partitions


def ensure_topics_with_config(
    bootstrap: str,
    name: str,
    partitions: int,
    compacted: bool,
    extra: dict[str, str] | None = None,
) -> bool:
    """Create one topic, compacted if asked (with `extra` topic configs); False when it already
    exists."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=10000)
    configs = {"cleanup.policy": "compact"} if compacted else {}
    configs |= extra or {}
    try:
        if name in set(admin.list_topics()):
            return False
        admin.create_topics(
            [NewTopic(name, partitions, replication_factor=-1, topic_configs=configs)]
        )
        return True
    except TopicAlreadyExistsError:
        return False
    finally:
        admin.close()


WAITING = Backoff(base=1.0, cap=30.0)  # for a broker that is not up yet


def when_kafka_answers(
    bootstrap: str, what: str, attempt: Callable[[], T], backoff: Backoff = WAITING
) -> T:
    """`attempt` (a call that needs the broker), tried again with backoff while Kafka does not
    answer: a process started before its broker waits for it, one clear line per attempt."""
    rng = random.Random()
    failures = 0
    while True:
        try:
            return attempt()
        except KafkaError as exc:
            delay = backoff.delay(failures, None, rng)
            log.warning(
                "Kafka at %s does not answer (%s: %r); trying again in %.1f s",
                bootstrap, what, exc, delay,
            )  # fmt: skip
            time.sleep(delay)
            failures += 1
