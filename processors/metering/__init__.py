"""Metered quantities: billing calendar, fold, processor, usage query, backfill and reconcile."""
