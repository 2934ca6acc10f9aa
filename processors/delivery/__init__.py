"""Every message to the processors, every write until it holds: Kafka gaps filled, retries."""
