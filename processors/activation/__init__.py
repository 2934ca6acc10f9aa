"""Activation detection: rule state, the pure engine, records, faust agent, store, queries."""
