"""Where rows are kept: the ClickHouse client, the raw event store, the tables' Kafka marks."""
