"""Runs a SAM template's functions, API, queues and schedules on one machine.

No Docker and no AWS account: each function runs in a worker process of its own
(the same handler code Lambda runs), local_queue/ stands in for SQS (queues kept
in PostgreSQL), moto's server for the other AWS APIs, an embedded PostgreSQL for
the database. `python -m local_runtime`
(what `make dev` runs) starts it all; see local_runtime.runtime.Runtime.

This package is a development tool: no Lambda artifact contains it.
"""
