"""A template the runtime cannot read stops it with one sentence, never a traceback.

Each case is `python -m local_runtime` in a process of its own, as a developer runs it:
it must exit non-zero with one line on stderr naming the resource and the property.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from local_runtime.template import load

REPO_ROOT = Path(__file__).resolve().parents[2]

FUNCTION = """
  HelloFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {code_uri}
      Handler: app.handler
      Runtime: python3.11
      Environment:
        Variables:
          GREETING: {greeting}
"""

QUEUE = """
  OrdersQueue:
    Type: AWS::SQS::Queue
    Properties:
{queue_properties}
"""


def template(
    code_uri: str = "code/",
    greeting: str = "hello",
    queue_properties: str | None = None,
) -> str:
    text = (
        'AWSTemplateFormatVersion: "2010-09-09"\n'
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:" + FUNCTION.format(code_uri=code_uri, greeting=greeting)
    )
    if queue_properties is not None:
        text += QUEUE.format(queue_properties=queue_properties)
    return text


CASES = {
    "yaml syntax": (
        template() + "  Broken: [unclosed\n",
        ("template.yaml", "line"),
    ),
    "unknown intrinsic function": (
        template(greeting="{'Fn::Frobnicate': [a, b]}"),
        ("HelloFunction", "Environment.Variables.GREETING", "Fn::Frobnicate"),
    ),
    "unknown intrinsic tag": (
        template(greeting="!Frobnicate a"),
        ("HelloFunction", "Environment.Variables.GREETING", "Fn::Frobnicate"),
    ),
    "ref to nothing": (
        template(greeting="!Ref NoSuchThing"),
        ("HelloFunction", "Environment.Variables.GREETING", "NoSuchThing"),
    ),
    "getatt of nothing": (
        template(greeting="!GetAtt NoSuchThing.Arn"),
        ("HelloFunction", "Environment.Variables.GREETING", "NoSuchThing"),
    ),
    "queue name sqs refuses": (
        template(queue_properties="      QueueName: orders queue!"),
        ("OrdersQueue", "QueueName", "orders queue!"),
    ),
    "fifo name on a standard queue": (
        template(queue_properties="      QueueName: orders.fifo"),
        ("OrdersQueue", "QueueName", "FifoQueue"),
    ),
    "queue name too long": (
        template(queue_properties="      QueueName: " + "q" * 81),
        ("OrdersQueue", "QueueName", "80"),
    ),
    "a timeout that is not a number": (
        template(greeting="hello\n      Timeout: three seconds"),
        ("HelloFunction", "Timeout", "three seconds"),
    ),
    "a visibility timeout that is not a number": (
        template(queue_properties="      VisibilityTimeout: 30s"),
        ("OrdersQueue", "VisibilityTimeout", "30s"),
    ),
    "missing code folder": (
        template(code_uri="no-such-folder/"),
        ("HelloFunction", "CodeUri", "no-such-folder"),
    ),
}


@pytest.mark.parametrize("text, named", CASES.values(), ids=CASES.keys())
def test_a_template_the_runtime_cannot_read_stops_it_with_one_sentence(tmp_path, text, named):
    # Given a template with one thing wrong, beside a code folder
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "app.py").write_text("def handler(event, context):\n    return {}\n")
    (tmp_path / "template.yaml").write_text(text)

    # When the runtime starts on it
    done = subprocess.run(  # noqa: S603 - this interpreter, the runtime's module
        [
            sys.executable,
            "-m",
            "local_runtime",
            "--template",
            str(tmp_path / "template.yaml"),
            "--state-dir",
            str(tmp_path / "state"),
            "--port",
            "0",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    # Then it stops, saying what and where in one line, with no traceback
    assert done.returncode != 0
    assert "Traceback" not in done.stdout + done.stderr
    complaint = done.stderr.strip().splitlines()
    assert len(complaint) == 1, done.stderr
    for name in named:
        assert name in complaint[0]


def test_references_to_what_sam_generates_are_not_refused(tmp_path):
    # MyFunctionRole, ServerlessRestApi: SAM makes them, so a template may name them.
    (tmp_path / "code").mkdir()
    (tmp_path / "template.yaml").write_text(
        template(greeting="!GetAtt HelloFunctionRole.Arn")
        + """
  Invoke:
    Type: AWS::Lambda::Permission
    Properties:
      Action: lambda:InvokeFunction
      FunctionName: !Ref HelloFunction
      Principal: apigateway.amazonaws.com
      SourceArn: !Sub arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:${ServerlessRestApi}/*
"""
    )

    assert load(tmp_path / "template.yaml").resources["Invoke"]
