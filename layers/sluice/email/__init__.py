"""The email function: queued email requests rendered and sent through SES, once each."""
