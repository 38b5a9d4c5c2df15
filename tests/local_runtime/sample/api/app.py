"""The sample's HTTP function: echoes the event it got, queues jobs, sleeps on demand."""

import base64
import json
import os
import time

import boto3

NAME = "api"  # the worker's app.py says "worker": each process must see its own
# Made at cold start (the runtime prewarms the function), not in the 1 s a request has:
# building a client loads botocore's service model, which a busy machine makes slow.
SQS = boto3.client("sqs")


def handler(event, context):
    route = event["routeKey"]
    if route == "POST /jobs":
        body = event["body"]
        if event["isBase64Encoded"]:
            body = base64.b64decode(body).decode()
        jobs = json.loads(body)
        for job in jobs:
            SQS.send_message(QueueUrl=os.environ["JOBS_QUEUE_URL"], MessageBody=json.dumps(job))
        return {"statusCode": 202, "body": json.dumps({"queued": len(jobs)})}
    if route == "GET /sleep/{seconds}":
        time.sleep(float(event["pathParameters"]["seconds"]))
        return {"slept": True}
    if route == "GET /files/{proxy+}":
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/octet-stream"},
            "cookies": ["a=1", "b=2; Path=/"],
            "body": base64.b64encode(b"\x00\x01binary").decode(),
            "isBase64Encoded": True,
        }
    # Echo: the event, and what this process is.
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(
            {
                "event": event,
                "module": NAME,
                "greeting": os.environ.get("GREETING"),
                "function": context.function_name,
                "remaining_ms": context.get_remaining_time_in_millis(),
                "environ": sorted(os.environ),
            }
        ),
    }
