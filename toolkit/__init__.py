"""What the tool packages share: a library, never run by itself, and it imports no tool.

The tools (local_runtime, local_queue, tools, benchmarks, loadtest) each stand alone
and import none of each other (tests/test_tool_imports.py); what two of them need
lives here instead:

- `forgery`: the guard every local-only endpoint (runtime, moto, local_queue) puts
  in front of its requests;
- `mail`: the mail moto's SES captured (`make mail`, the console);
- `redrive`: SQS's own redrive, followed until it ends (`make redrive`, the console);
- `postgres`: an embedded PostgreSQL and scratch databases on it (the benchmarks,
  local_queue's bench and the tests' fixtures);
- `lambda_events`: the events API Gateway and SQS hand a function (the benchmarks and
  the tests);
- `local_queue_client`: SQS's JSON protocol to local_queue without botocore (the
  runtime's pollers, `make bench` part 11's storers);
- `wrk`: wrk's single-event load (`one_event.lua`) and its report read (`make
  loadtest ARGS="--wrk"`, `make bench` part 11);
- `cloudformation`: template.yaml as CloudFormation receives it, translated and with
  one environment's conditions applied (`python -m tools.costs` and the infra tests).

Like the tools, it runs beside the product and no Lambda artifact contains it.
"""
