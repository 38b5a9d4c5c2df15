"""Rollups: stored events counted into hourly and daily totals, and the stats read from them."""
