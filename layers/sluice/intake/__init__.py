"""Ingest: an event checked against its app's rules and keys, then queued for the store."""
