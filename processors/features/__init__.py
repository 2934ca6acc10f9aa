"""Feature usage: per-minute counters per account and feature, and the queries over them."""
