"""What every flow stands on: settings, database, errors, clock, logs and metrics, HTTP glue."""
