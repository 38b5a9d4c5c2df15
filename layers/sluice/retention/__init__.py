"""Retention (keeping events): partitions ahead, expiry with its archive, old records purged."""
