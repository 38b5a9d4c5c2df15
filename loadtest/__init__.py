"""`make loadtest`: drives a running local Sluice and reports what it acknowledged and stored."""
