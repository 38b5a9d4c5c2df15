"""Runs a SAM template's functions, API, queues and schedules on one machine.

No Docker and no AWS account: each function runs in a worker process of its own
(the same handler code Lambda runs), local_queue/ stands in for SQS (queues kept
in PostgreSQL), moto's server for the other AWS APIs, an embedded PostgreSQL for
the database. `python -m local_runtime`
(what `make dev` runs) starts it all; see local_runtime.runtime.Runtime.

This package is a development tool: no Lambda artifact contains it. It imports no
other tool (tests/test_tool_imports.py): local_queue runs as a process of its own
(`python -m local_queue`) and is reached over HTTP; the HTTP server and the guard
against web pages come from toolkit/, whose server issue 26 replaces.
"""
