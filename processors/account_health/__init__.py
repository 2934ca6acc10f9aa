"""Account health: a score per account from its events, and the accounts crossing the threshold."""
