"""How events get in: the HTTP collector and the sink it produces to."""

from ingest.collector import create_collector
from ingest.sink import EventSink, KafkaEventSink

__all__ = ["EventSink", "KafkaEventSink", "create_collector"]
