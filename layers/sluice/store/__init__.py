"""The store: queued events written to PostgreSQL (COPY, then ON CONFLICT with halving)."""
