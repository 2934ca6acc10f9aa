"""The usage-stream Python SDK: `Client(write_key, host).track(user_id, event, properties)`."""

from usage_stream_sdk.client import Client, Failure, FailureKind, Receipt, Stats
from usage_stream_sdk.http_transport import HttpTransport
from usage_stream_sdk.transport import (
    FatalError,
    FieldError,
    RetryableError,
    SendResult,
    Transport,
)

__all__ = [
    "Client",
    "Failure",
    "FailureKind",
    "FatalError",
    "FieldError",
    "HttpTransport",
    "Receipt",
    "RetryableError",
    "SendResult",
    "Stats",
    "Transport",
]
