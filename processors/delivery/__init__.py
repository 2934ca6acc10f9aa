"""Every write until it holds: retries that block a batch's offsets, never skip them."""
