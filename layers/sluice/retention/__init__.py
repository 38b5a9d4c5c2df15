"""Retention: partitions ahead, expiry with its archive, old records purged."""
