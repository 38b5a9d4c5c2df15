import importlib.util

import boto3


def handler(event, context):
    if event.get("endpoint_url"):
        # An explicit AWS endpoint: whatever the variables say, this is real AWS.
        client = boto3.client("sts", endpoint_url=event["endpoint_url"])
        return client.get_caller_identity()
    found = {name: importlib.util.find_spec(name) is not None for name in event["modules"]}
    return {"boto3": boto3.__version__, "found": found}
