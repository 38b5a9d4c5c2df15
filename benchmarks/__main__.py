"""`make bench`: Sluice's speed figures. Prints them; asserts nothing.

1. Ingest CPU per event, warm, SQS stubbed at the client.
2. Store throughput next to a raw COPY of the same rows, interleaved.
3. Cold start of each function next to the floor of the libraries it stands on.
4. Rule cost per event: a typical rule, issue 9's hostile pattern, the most errors.
5. Aggregation: a first run over 1,000,000 events, 10,000 new ones, a stats query.
6-7. Accounts: sign-in CPU per request (scrypt); the email function's throughput on moto's SES.
8. Listing 100 events of an app holding 1,000,000, and the query's plan.
9. Retention: store into the partitioned table next to a raw COPY into its
   partition, dropping a day's partition under a concurrent store, archiving a day.
10. The functions' own CPU per event (ingest with its real SQS client, store with its
   database): the most one machine could reach, whatever runs around them.
11. The request path issue 26 keeps, alone (an HTTP front, worker processes, boto3's
   SendMessage to a durable queue, the store's handler on that queue) under wrk:
   what `make dev` could reach on this machine if Sluice's own work cost nothing.
"""

from __future__ import annotations

import argparse
import importlib

from benchmarks.environment import bench_environment


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parts = [
        "ingest",
        "store",
        "cold",
        "rules",
        "aggregate",
        "accounts",
        "events",
        "retention",
        "floor",
        "path",
    ]
    parser.add_argument("--only", choices=parts, action="append")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, rougher figures")
    args = parser.parse_args()
    chosen = args.only or parts
    with bench_environment() as env:
        for name, module in (
            ("ingest", "ingest_cpu"),
            ("store", "store_throughput"),
            ("cold", "cold_start"),
            ("rules", "rule_cost"),
            ("aggregate", "aggregation"),
            ("accounts", "accounts"),
            ("events", "events_list"),
            ("retention", "retention"),
            ("floor", "request_floor"),
            ("path", "path_floor"),
        ):
            if name in chosen:
                importlib.import_module(f"benchmarks.{module}").run(env, quick=args.quick)
                print()


if __name__ == "__main__":
    main()
