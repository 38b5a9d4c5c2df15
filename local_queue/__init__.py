"""A durable, SQS-compatible queue server for the local runtime (never part of a Lambda artifact).

It speaks the subset of SQS's JSON protocol that boto3 clients use here, keeps every
message in PostgreSQL (schema `local_sqs`), and answers a send only once it is
committed. Start it with `QueueServer(database_url).start()` or
`python -m local_queue --database-url URL`; point handlers at it with
AWS_ENDPOINT_URL_SQS.
"""

from local_queue.server import QueueServer

__all__ = ["QueueServer"]
