"""How events get in: the HTTP collector, the sink it produces to, and the SDK's Kafka transport."""

from ingest.collector import create_collector
from ingest.kafka_transport import KafkaTransport
from ingest.sink import EventSink, KafkaEventSink

__all__ = ["EventSink", "KafkaEventSink", "KafkaTransport", "create_collector"]
