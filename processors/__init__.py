"""The worker side: Kafka `events` into ClickHouse through every processor, and the read API."""
