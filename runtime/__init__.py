"""What every usage-stream process runs on: Kafka topics and consumer-group offsets, heap
settling, API docs pages, /proc readings and percentiles. Imports nothing of the processes."""
