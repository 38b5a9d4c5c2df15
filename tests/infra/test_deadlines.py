"""Every function's worst case fits inside its Timeout: the deadline budget, written down.

For each function this adds up, from the translated template and the settings the
template gives it, the longest an invocation can wait on its dependencies before it
answers: Sluice's own 503, or the batch items it returns to the queue, never a
Lambda timeout (which API Gateway turns into a 500). docs/operating-in-aws.md,
"Deadlines", shows the same table.

What one database failure costs, once per invocation (sluice.core.db.Database holds
the database unavailable after it, for at least the function's Timeout): a kept
connection found dead at once (INSTANT_FAILURE_SECONDS), then the secret read from
Secrets Manager, libpq's connect timeout and RDS Proxy's ConnectionBorrowTimeout.
What each AWS call costs: its attempts, each timing out, and botocore's longest
backoff between them (sluice.core.aws_clients.worst_call_seconds). Calls that answer,
however slowly, are not a failure and are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sluice.core import aws_clients, config
from sluice.core.config import AwsSettings
from sluice.core.db import INSTANT_FAILURE_SECONDS

from tests.infra.stack import REPO_ROOT, of_type, referenced

# libpq waits at least 2 s whatever connect_timeout says.
LIBPQ_MINIMUM_CONNECT_SECONDS = 2
# A function's own work on its worst request, and its answer: a 1 MiB batch parsed and
# checked, the 503 or the batch response built, metrics flushed.
OWN_WORK_SECONDS = 1.0
# scrypt at n=2^17 on 1,769 MB takes about 0.5 s: the dummy hash built at cold start
# (sluice.accounts.passwords) and the request's own.
ACCOUNTS_HASHES_SECONDS = 2 * 0.5


@dataclass(frozen=True)
class Budget:
    function: str
    timeout: float
    database: float  # one database failure
    aws_calls: float  # the AWS calls that can each time out, one after another
    own_work: float
    limit: float  # what they must fit in

    @property
    def worst(self) -> float:
        return self.database + self.aws_calls + self.own_work


def _literal_environment(function: dict[str, Any]) -> dict[str, str]:
    variables = function["Properties"]["Environment"]["Variables"]
    return {name: value for name, value in variables.items() if isinstance(value, str)}


def _aws(environment: dict[str, str]) -> AwsSettings:
    env = config._Reader(environment)
    settings = AwsSettings.read(env)
    env.check()
    return settings


def _database(environment: dict[str, str]) -> tuple[float, float]:
    """(libpq's connect timeout as it waits, the hold) for a function's environment."""
    env = config._Reader(environment)
    connect = config.DB_CONNECT_TIMEOUT_SECONDS.read(env)
    hold = config.DB_UNAVAILABLE_HOLD_SECONDS.read(env)
    env.check()
    return max(connect, LIBPQ_MINIMUM_CONNECT_SECONDS), hold


def _borrow_timeout(resources) -> float:
    [group] = of_type(resources, "AWS::RDS::DBProxyTargetGroup").values()
    return float(group["Properties"]["ConnectionPoolConfigurationInfo"]["ConnectionBorrowTimeout"])


def _batch_size(resources, function: str) -> int:
    [size] = [
        int(mapping["Properties"]["BatchSize"])
        for mapping in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
        if referenced(mapping["Properties"]["FunctionName"]) == function
    ]
    return size


def _migrate_role_secrets(function: dict[str, Any]) -> int:
    arns = function["Properties"]["Environment"]["Variables"]["DB_ROLE_SECRETS"]
    # !Join [",", [!Ref A, !Ref B, ...]]
    return len(arns["Fn::Join"][1])


def budgets(resources) -> list[Budget]:
    functions = of_type(resources, "AWS::Lambda::Function")
    borrow = _borrow_timeout(resources)
    result = []
    for name, function in functions.items():
        if name not in SETTINGS_OF:
            continue
        environment = _literal_environment(function)
        aws = _aws(environment)
        connect, _ = _database(environment)
        call = aws_clients.worst_call_seconds(aws)
        timeout = float(function["Properties"]["Timeout"])
        through_proxy = name != "MigrateFunction"  # migrate goes straight to the instance
        database = INSTANT_FAILURE_SECONDS + call + connect + (borrow if through_proxy else 0)
        if name in ("IngestFunction", "AccountsFunction"):
            # One send to a queue: ingest's EventQueue stops at the first call that
            # cannot reach SQS; accounts sends one request.
            own = OWN_WORK_SECONDS + (ACCOUNTS_HASHES_SECONDS if name == "AccountsFunction" else 0)
            result.append(Budget(name, timeout, database, call, own, timeout))
        elif name == "EmailFunction":
            # One SES call per record of the batch, each its own failure.
            calls = _batch_size(resources, name) * call
            result.append(Budget(name, timeout, database, calls, OWN_WORK_SECONDS, timeout))
        elif name in ("StoreFunction", "ManageFunction"):
            result.append(Budget(name, timeout, database, 0.0, OWN_WORK_SECONDS, timeout))
        elif name == "AggregateFunction":
            # A run starts no chunk within stop_before_timeout of its deadline: the chunk
            # in flight must fail inside that.
            env = config._Reader(environment)
            stop = config.AGGREGATE_STOP_BEFORE_TIMEOUT_SECONDS.read(env)
            result.append(Budget(name, timeout, database, 0.0, OWN_WORK_SECONDS, stop))
        elif name == "MaintainFunction":
            # An archive upload that fails is aborted: two S3 calls in the failing step.
            env = config._Reader(environment)
            stop = config.MAINTAIN_STOP_BEFORE_TIMEOUT_SECONDS.read(env)
            result.append(Budget(name, timeout, database, 2 * call, OWN_WORK_SECONDS, stop))
        elif name == "MigrateFunction":
            # One secret per function role, then the answer to CloudFormation, which the
            # handler's timer sends DEADLINE_MARGIN_SECONDS before Lambda's deadline.
            from functions.migrate.app import DEADLINE_MARGIN_SECONDS

            secrets = _migrate_role_secrets(function) * call
            limit = timeout - DEADLINE_MARGIN_SECONDS
            result.append(Budget(name, timeout, database, secrets, OWN_WORK_SECONDS, limit))
    return result


SETTINGS_OF = {
    "IngestFunction",
    "StoreFunction",
    "AccountsFunction",
    "EmailFunction",
    "AggregateFunction",
    "ManageFunction",
    "MigrateFunction",
    "MaintainFunction",
}


def test_every_function_has_a_budget(resources):
    assert {budget.function for budget in budgets(resources)} == SETTINGS_OF


@pytest.mark.parametrize("function", sorted(SETTINGS_OF))
def test_the_worst_case_fits_inside_the_function_timeout(resources, function):
    [budget] = [b for b in budgets(resources) if b.function == function]
    assert budget.worst <= budget.limit, (
        f"{function}: database {budget.database:.1f} s + AWS {budget.aws_calls:.1f} s"
        f" + own work {budget.own_work:.1f} s = {budget.worst:.1f} s,"
        f" over {budget.limit:.1f} s (Timeout {budget.timeout:.0f} s)"
    )


# Those that may look the database up again after a failure in the same invocation
# (email: one transaction per record). Aggregate, maintain and migrate end their run at
# the first DatabaseUnavailable.
@pytest.mark.parametrize(
    "function",
    ["IngestFunction", "AccountsFunction", "ManageFunction", "StoreFunction", "EmailFunction"],
)
def test_one_invocation_waits_for_the_database_once(resources, function):
    properties = of_type(resources, "AWS::Lambda::Function")[function]["Properties"]
    _, hold = _database(_literal_environment(of_type(resources, "AWS::Lambda::Function")[function]))
    assert hold >= float(properties["Timeout"])


def test_botocore_defaults_would_not_fit(resources):
    """The budget can fail: ingest with botocore's own timeouts and retries is far over."""
    defaults = AwsSettings(connect_timeout=60, read_timeout=60, max_attempts=3)
    assert aws_clients.worst_call_seconds(defaults) > 10


def test_no_aws_client_is_made_outside_aws_clients():
    """One place gives clients their deadlines: no other module may make one."""
    offenders = []
    for folder in ("functions", "layers", "toolkit"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            if path.name == "aws_clients.py":
                continue
            text = path.read_text(encoding="utf-8")
            for made in ("boto3.client(", "boto3.resource(", "get_secret(", "SecretsProvider("):
                if made in text:
                    offenders.append(f"{path.relative_to(REPO_ROOT)}: {made}")
    assert offenders == []


def test_the_docs_table_is_the_budget(resources):
    """docs/operating-in-aws.md, "Deadlines": each function's timeout and worst case as here."""
    text = (REPO_ROOT / "docs" / "operating-in-aws.md").read_text(encoding="utf-8")
    section = text.split("### Deadlines", 1)[1].split("\n### ", 1)[0]
    rows = {
        cells[0]: cells
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| function")
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }
    for budget in budgets(resources):
        name = budget.function.removesuffix("Function").lower()
        assert rows[name][1] == f"{budget.timeout:g} s", name
        assert rows[name][-1] == f"{budget.worst:g} s", name
