"""Activation detection: rule state, the pure engine and what it remembers, records, faust tables,
store, queries."""
