import os

import boto3
import botocore


def handler(event, context):
    boto3.client("sqs").send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody="note")
    return {"botocore": botocore.__version__}
