"""The Python SDK: `Client(write_key, host).track(user_id, event, properties)`."""

from ingest.sdk.client import Client, Failure, FailureKind, Receipt, Stats
from ingest.sdk.http_transport import HttpTransport
from ingest.sdk.kafka_transport import KafkaTransport

__all__ = [
    "Client",
    "Failure",
    "FailureKind",
    "HttpTransport",
    "KafkaTransport",
    "Receipt",
    "Stats",
]
