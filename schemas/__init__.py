"""The contracts: events on the wire and on Kafka, and the ClickHouse schema."""

from schemas.enriched import EnrichedEvent, corrected_timestamp
from schemas.events import Batch, Group, Identify, Track

__all__ = ["Batch", "EnrichedEvent", "Group", "Identify", "Track", "corrected_timestamp"]
