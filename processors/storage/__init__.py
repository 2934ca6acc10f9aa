"""Where rows are kept: ClickHouse client, raw event store with its id filter, Kafka marks."""
