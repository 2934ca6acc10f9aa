"""Activation detection: rule state, the pure engine, records, faust tables, store, queries."""
