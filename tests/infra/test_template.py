"""What the deployed stack is made of, read from the template SAM translates for CloudFormation."""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import orjson
import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from sluice.accounts.limits import HASH_SLOT_LEASE

from tests.infra.stack import REPO_ROOT, of_type, referenced, resolve, rule_holds
from tests.openapi import document as openapi_document
from tests.openapi import operations

# Data services: a wildcard action here would hand out more than one queue or secret.
DATA_SERVICES = ("sqs", "secretsmanager", "rds-data", "rds-db", "rds", "kms")


def statements(resources: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every inline IAM statement of every role and policy, with the resource it belongs to."""
    found = []
    for name, resource in resources.items():
        properties = resource.get("Properties", {})
        documents = []
        if resource["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [properties["PolicyDocument"]]
        for document in documents:
            body = document.get("Statement", [])
            for statement in body if isinstance(body, list) else [body]:
                found.append((name, statement))
    return found


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def sqs_triggers(resources) -> dict[str, dict[str, Any]]:
    return {
        name: mapping
        for name, mapping in of_type(resources, "AWS::Lambda::EventSourceMapping").items()
        if resources[referenced(mapping["Properties"]["EventSourceArn"])]["Type"]
        == "AWS::SQS::Queue"
    }


def parameter_default(cfn, value: Any) -> Any:
    """A literal, or the default of the parameter it refers to."""
    if isinstance(value, dict) and "Ref" in value:
        return cfn["Parameters"][value["Ref"]]["Default"]
    return value


# --- queues and their consumer ---------------------------------------------------


def consumers(resources) -> dict[str, str]:
    """queue -> the function its SQS trigger invokes."""
    return {
        referenced(m["Properties"]["EventSourceArn"]): referenced(m["Properties"]["FunctionName"])
        for m in sqs_triggers(resources).values()
    }


def test_the_store_function_consumes_the_queue_ingest_writes_to(resources):
    ingest_env = resources["IngestFunction"]["Properties"]["Environment"]["Variables"]

    assert consumers(resources)[referenced(ingest_env["EVENTS_QUEUE_URL"])] == "StoreFunction"


def test_the_email_function_consumes_the_queue_accounts_writes_to(resources):
    accounts_env = resources["AccountsFunction"]["Properties"]["Environment"]["Variables"]

    assert consumers(resources)[referenced(accounts_env["EMAIL_QUEUE_URL"])] == "EmailFunction"
    assert set(consumers(resources).values()) == {"StoreFunction", "EmailFunction"}


def test_every_consumed_queue_has_a_dead_letter_queue(resources):
    triggers = sqs_triggers(resources)
    assert triggers, "no SQS trigger found"
    for mapping in triggers.values():
        queue = resources[referenced(mapping["Properties"]["EventSourceArn"])]["Properties"]
        redrive = queue["RedrivePolicy"]
        dlq = resources[referenced(redrive["deadLetterTargetArn"])]

        assert dlq["Type"] == "AWS::SQS::Queue"
        assert redrive["maxReceiveCount"] == 5
        assert dlq["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_visibility_timeout_is_at_least_six_times_the_consumers_timeout(resources):
    for mapping in sqs_triggers(resources).values():
        queue = resources[referenced(mapping["Properties"]["EventSourceArn"])]["Properties"]
        function = resources[referenced(mapping["Properties"]["FunctionName"])]["Properties"]

        assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]


def test_every_sqs_trigger_reports_item_failures_and_caps_its_concurrency(cfn, resources):
    for mapping in sqs_triggers(resources).values():
        properties = mapping["Properties"]

        assert "ReportBatchItemFailures" in properties["FunctionResponseTypes"]
        maximum = parameter_default(cfn, properties["ScalingConfig"]["MaximumConcurrency"])
        assert 2 <= int(maximum) <= 20  # a handful of Postgres connections, not hundreds


def test_trigger_batching_is_set_by_parameters(cfn, resources):
    for mapping in sqs_triggers(resources).values():
        properties = mapping["Properties"]
        if referenced(properties["FunctionName"]) == "EmailFunction":
            # Ten emails an invocation, no window: a code should not wait to be batched.
            assert properties["BatchSize"] == 10
            assert "MaximumBatchingWindowInSeconds" not in properties
            continue
        assert properties["BatchSize"] == {"Ref": "StoreBatchSize"}
        assert properties["MaximumBatchingWindowInSeconds"] == {"Ref": "StoreBatchingWindowSeconds"}
    # SQS refuses batches over 10 without a batching window of at least a second.
    assert int(cfn["Parameters"]["StoreBatchSize"]["Default"]) <= 10 or (
        int(cfn["Parameters"]["StoreBatchingWindowSeconds"]["Default"]) >= 1
    )


@pytest.mark.parametrize(
    ("batch_size", "window", "allowed"),
    [
        (100, 0, False),  # Lambda refuses this pair; the rule stops it before any change
        (11, 0, False),
        (10, 0, True),
        (1, 0, True),
        (100, 1, True),
        (10000, 300, True),
    ],
)
def test_a_rule_refuses_big_batches_without_a_window(cfn, batch_size, window, allowed):
    parameters = {"StoreBatchSize": batch_size, "StoreBatchingWindowSeconds": window}
    assert rule_holds(cfn, "StoreBatchesOverTenNeedAWindow", parameters) is allowed


def test_queues_are_encrypted(resources):
    for queue in of_type(resources, "AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True


# --- functions --------------------------------------------------------------------


def test_every_function_is_arm64_python313_traced_and_in_the_vpc(resources):
    functions = of_type(resources, "AWS::Lambda::Function")
    assert set(functions) == {
        "IngestFunction",
        "StoreFunction",
        "MigrateFunction",
        "AccountsFunction",
        "EmailFunction",
        "AggregateFunction",
        "ManageFunction",
        "MaintainFunction",
    }
    for function in functions.values():
        properties = function["Properties"]
        assert properties["Architectures"] == ["arm64"]
        assert properties["Runtime"] == "python3.13"
        assert properties["TracingConfig"] == {"Mode": "Active"}
        assert len(properties["VpcConfig"]["SubnetIds"]) == 2


def test_no_function_traces_its_responses(resources):
    """Responses quote payload values (a 422 lists them); X-Ray must not record them."""
    for name, function in of_type(resources, "AWS::Lambda::Function").items():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false", name
        assert env["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false", name


def test_only_the_migration_function_skips_certificate_verification(resources):
    """verify-full (the default) checks RDS Proxy's certificate against certifi's roots.

    Only `migrate` talks to the instance itself, whose RDS-CA certificate certifi
    cannot verify; it still requires TLS.
    """
    for name, function in of_type(resources, "AWS::Lambda::Function").items():
        env = function["Properties"]["Environment"]["Variables"]
        if name == "MigrateFunction":
            assert env["DB_SSLMODE"] == "require"
            assert env["DB_HOST"] == {"Fn::GetAtt": ["Database", "Endpoint.Address"]}
        else:
            assert env.get("DB_SSLMODE", "verify-full") == "verify-full", name
            assert env["DB_HOST"] == {"Fn::GetAtt": ["DatabaseProxy", "Endpoint"]}, name


def test_every_function_gets_powertools_settings_and_the_database(resources):
    for function in of_type(resources, "AWS::Lambda::Function").values():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Sluice"
        assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL"} <= env.keys()
        assert {"DB_SECRET_ARN", "DB_HOST", "DB_PORT", "DB_NAME"} <= env.keys()


def test_ingest_store_and_aggregate_reach_postgres_through_the_proxy(resources):
    for name in ("IngestFunction", "StoreFunction", "AggregateFunction"):
        env = resources[name]["Properties"]["Environment"]["Variables"]
        assert env["DB_HOST"] == {"Fn::GetAtt": ["DatabaseProxy", "Endpoint"]}


def test_ingest_reads_its_documented_settings(resources):
    env = resources["IngestFunction"]["Properties"]["Environment"]["Variables"]
    assert env["MAX_EVENT_BYTES"] == "32768"
    assert env["RULES_CACHE_TTL_SECONDS"] == {"Ref": "IngestCacheSeconds"}


def test_manage_quotes_the_cache_times_ingest_uses(cfn, resources):
    # Each change's answer says when ingest follows it: one parameter sets both.
    assert cfn["Parameters"]["IngestCacheSeconds"]["Default"] == 60
    for name in ("RULES_CACHE_TTL_SECONDS", "KEYS_CACHE_TTL_SECONDS"):
        ingest = resources["IngestFunction"]["Properties"]["Environment"]["Variables"][name]
        manage = resources["ManageFunction"]["Properties"]["Environment"]["Variables"][name]
        assert ingest == manage == {"Ref": "IngestCacheSeconds"}, name


def test_every_function_writes_to_a_log_group_with_retention(resources):
    for function in of_type(resources, "AWS::Lambda::Function").values():
        group = resources[referenced(function["Properties"]["LoggingConfig"]["LogGroup"])]
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert "RetentionInDays" in group["Properties"]


def stack_values(stack_name: str, stack_uuid: str, environment: str = "dev") -> dict[str, str]:
    region, account = "us-east-1", "123456789012"
    return {
        "AWS::StackName": stack_name,
        "AWS::StackId": (
            f"arn:aws:cloudformation:{region}:{account}:stack/{stack_name}/{stack_uuid}"
        ),
        "AWS::Region": region,
        "AWS::AccountId": account,
        "Environment": environment,
    }


@pytest.mark.parametrize("stack_name", ["sluice-dev", "Sluice-Staging-2"])
def test_the_databases_log_exports_go_to_groups_the_stack_keeps_for_a_while(resources, stack_name):
    """RDS makes /aws/rds/instance/<id>/<log> itself, kept forever, unless it exists already."""
    database = resources["Database"]
    exports = database["Properties"]["EnableCloudwatchLogsExports"]
    assert exports == ["postgresql", "upgrade"]
    named = {
        name: group
        for name, group in of_type(resources, "AWS::Logs::LogGroup").items()
        if "LogGroupName" in group["Properties"]
    }
    values = stack_values(stack_name, "1c2fa620-982a-11e3-aff7-50e2416294e0")
    # The instance's name is known before it exists, in the form RDS keeps (it lowercases
    # identifiers, and log groups' names are case-sensitive, so the stack's name, which
    # may have capitals, is not in it).
    identifier = resolve(database["Properties"]["DBInstanceIdentifier"], values)
    assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", identifier) and len(identifier) <= 63
    groups = {resolve(g["Properties"]["LogGroupName"], values): n for n, g in named.items()}
    for export in exports:
        group = groups[f"/aws/rds/instance/{identifier}/{export}"]
        assert named[group]["Properties"]["RetentionInDays"] == {"Fn::If": ["IsProd", 90, 14]}
        # Made before the instance, so RDS finds it rather than making its own.
        assert group in database["DependsOn"]
    # Another stack in the same account and region gets another instance.
    other = stack_values(stack_name, "9e7b1d22-982a-11e3-aff7-50e2416294e0")
    assert resolve(database["Properties"]["DBInstanceIdentifier"], other) != identifier
    # Enhanced Monitoring's RDSOSMetrics is one group for every instance in the account
    # and region: not this stack's to make or delete (docs/operating-in-aws.md).
    assert "RDSOSMetrics" not in groups


def test_all_functions_share_the_one_layer(resources):
    (layer,) = of_type(resources, "AWS::Lambda::LayerVersion")
    for function in of_type(resources, "AWS::Lambda::Function").values():
        assert function["Properties"]["Layers"] == [{"Ref": layer}]
    properties = resources[layer]["Properties"]
    assert properties["CompatibleRuntimes"] == ["python3.13"]
    assert properties["CompatibleArchitectures"] == ["arm64"]


# --- least privilege --------------------------------------------------------------


def test_no_statement_grants_a_wildcard_action_on_data_services(resources):
    for owner, statement in statements(resources):
        if statement.get("Effect") != "Allow":
            continue
        for action in as_list(statement["Action"]):
            assert action != "*", f"{owner} allows every action"
            service, _, name = action.partition(":")
            if service in DATA_SERVICES:
                assert "*" not in name, f"{owner} allows {action}"
                assert statement["Resource"] != "*", f"{owner} allows {action} on every resource"


MASTER_SECRET = {"Fn::GetAtt": ["Database", "MasterUserSecret.SecretArn"]}


def secrets_read(resources) -> dict[str, list]:
    """Role (logical id) -> every secret its statements let it read."""
    read: dict[str, list] = {}
    for owner, statement in statements(resources):
        if any(a.startswith("secretsmanager:") for a in as_list(statement["Action"])):
            assert as_list(statement["Action"]) == ["secretsmanager:GetSecretValue"], owner
            for resource in as_list(statement["Resource"]):
                # SAM's policy template wraps the ARN in a Fn::Sub.
                if "Fn::Sub" in resource:
                    resource = resource["Fn::Sub"][1]["secretArn"]
                read.setdefault(owner, []).append(resource)
    return read


def database_functions(resources) -> dict[str, dict]:
    """Every function that connects to the database: name -> its environment."""
    return {
        name: function["Properties"]["Environment"]["Variables"]
        for name, function in of_type(resources, "AWS::Lambda::Function").items()
        if "DB_SECRET_ARN" in function["Properties"].get("Environment", {}).get("Variables", {})
    }


def test_each_function_connects_as_its_own_role_and_reads_only_its_secret(resources):
    read = secrets_read(resources)
    functions = database_functions(resources)
    assert {"IngestFunction", "StoreFunction", "MigrateFunction", "AggregateFunction"} <= set(
        functions
    )
    role_secrets = []
    for name, env in functions.items():
        if name == "MigrateFunction":
            continue
        secret = env["DB_SECRET_ARN"]
        # Its own secret, made for the role it names, and no other.
        assert read[f"{name}Role"] == [secret], name
        template = orjson.loads(
            resources[referenced(secret)]["Properties"]["GenerateSecretString"][
                "SecretStringTemplate"
            ]
        )
        assert template == {"username": env["DB_USER"]}, name
        assert env["DB_USER"].startswith("sluice_"), name
        role_secrets.append(secret)
    assert len({referenced(s) for s in role_secrets}) == len(role_secrets), "roles share a secret"
    # Only the migration function holds the master secret, and it sets every role's password.
    migrate = functions["MigrateFunction"]
    assert migrate["DB_SECRET_ARN"] == MASTER_SECRET
    assert migrate["DB_ROLE_SECRETS"] == {"Fn::Join": [",", role_secrets]}
    assert sorted(map(str, read["MigrateFunctionRole"])) == sorted(
        map(str, [MASTER_SECRET, *role_secrets])
    )
    assert resources["Migrations"]["Properties"]["RoleSecrets"] == role_secrets
    # The proxy lets in the functions' roles, and only those.
    auth = resources["DatabaseProxy"]["Properties"]["Auth"]
    assert [entry["SecretArn"] for entry in auth] == role_secrets
    # ...and reads the secrets of those roles alone: the master user goes straight to
    # the instance, so the proxy has no use for its secret.
    assert sorted(map(str, read["DatabaseProxyRole"])) == sorted(map(str, role_secrets))
    readers_of_master = [owner for owner, secrets in read.items() if MASTER_SECRET in secrets]
    assert readers_of_master == ["MigrateFunctionRole"]


def test_each_producer_may_send_only_to_its_own_queue(resources):
    senders = {
        owner: referenced(statement["Resource"])
        for owner, statement in statements(resources)
        if "sqs:SendMessage" in as_list(statement["Action"])
    }
    assert senders == {"IngestFunctionRole": "EventsQueue", "AccountsFunctionRole": "EmailQueue"}


def test_only_the_email_function_may_send_mail_and_only_as_the_sender_identity(resources):
    sending = [
        (owner, statement)
        for owner, statement in statements(resources)
        if any(a.startswith("ses:") for a in as_list(statement["Action"]))
    ]
    (owner, statement), *others = sending
    identity, configuration_set = statement["Resource"]

    assert others == []
    assert owner == "EmailFunctionRole"
    assert as_list(statement["Action"]) == ["ses:SendEmail"]
    assert identity == {
        "Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}"
        ":identity/${EmailSenderIdentity}"
    }
    # The configuration set only when one is named.
    condition, arn, otherwise = configuration_set["Fn::If"]
    assert condition == "HasEmailConfigurationSet"
    assert arn["Fn::Sub"].endswith(":configuration-set/${EmailConfigurationSet}")
    assert otherwise == {"Ref": "AWS::NoValue"}


def test_the_sender_is_the_deployers_choice(cfn, resources):
    env = resources["EmailFunction"]["Properties"]["Environment"]["Variables"]
    assert env["EMAIL_SENDER_ADDRESS"] == {"Ref": "EmailSenderAddress"}
    assert env["EMAIL_CONFIGURATION_SET"] == {"Ref": "EmailConfigurationSet"}
    assert not rule_holds(cfn, "SenderChosen", {})
    assert rule_holds(
        cfn,
        "SenderChosen",
        {"EmailSenderAddress": "no-reply@example.com", "EmailSenderIdentity": "example.com"},
    )


def test_no_function_prints_codes_in_aws(resources):
    """The local printout of codes is switched on by local-env.json only."""
    for name, function in of_type(resources, "AWS::Lambda::Function").items():
        assert "LOCAL_MAIL_ECHO" not in function["Properties"]["Environment"]["Variables"], name


def test_the_accounts_function_hashes_passwords_with_owasps_scrypt_cost(resources):
    properties = resources["AccountsFunction"]["Properties"]
    assert properties["Environment"]["Variables"]["PASSWORD_SCRYPT_N"] == "131072"  # noqa: S105
    # 128 MiB for the hash, and a full vCPU (1769 MB) to make it in about half a second.
    assert properties["MemorySize"] >= 1769


def test_the_password_routes_cannot_take_the_accounts_lambda_concurrency(cfn, resources):
    """Issue 24: at 1,000 rps x 0.5 s the three hashing routes wanted ~1,500 executions,
    over the account's default 1,000, and ingest and store would have been throttled."""
    properties = resources["AccountsFunction"]["Properties"]
    reserved = {"Ref": "AccountsReservedConcurrency"}
    # A cap (reserved concurrency is also the most the function may run), and the
    # function knows it: half of it may hash at once (sluice.accounts.accounts).
    assert properties["ReservedConcurrentExecutions"] == reserved
    assert properties["Environment"]["Variables"]["ACCOUNTS_RESERVED_CONCURRENCY"] == reserved
    parameter = cfn["Parameters"]["AccountsReservedConcurrency"]
    assert parameter["MinValue"] >= 2  # 0 would stop the function; 1 leaves no hashing slot
    # Lambda keeps 100 of the account's concurrency unreserved: what every function
    # reserves at most, plus 100, fits the default account limit of 1,000.
    reserving = [
        function["Properties"]
        for function in of_type(resources, "AWS::Lambda::Function").values()
        if "ReservedConcurrentExecutions" in function["Properties"]
    ]
    assert len(reserving) == 1
    assert parameter["MaxValue"] + 100 <= 1000
    # The slots' lease is the function's timeout: a killed invocation's slot is free after.
    assert properties["Timeout"] == HASH_SLOT_LEASE.total_seconds()


def test_only_the_email_function_reaches_the_ses_endpoint(resources):
    (endpoint,) = [
        r["Properties"]
        for r in of_type(resources, "AWS::EC2::VPCEndpoint").values()
        if r["Properties"]["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.email"}
    ]
    (group,) = endpoint["SecurityGroupIds"]
    ingress = resources[referenced(group)]["Properties"]["SecurityGroupIngress"]
    email_groups = resources["EmailFunction"]["Properties"]["VpcConfig"]["SecurityGroupIds"]

    assert endpoint["PrivateDnsEnabled"] is True
    assert [(r["FromPort"], referenced(r["SourceSecurityGroupId"])) for r in ingress] == [
        (443, referenced(email_groups[0]))
    ]


# --- database and network ---------------------------------------------------------


def test_database_engine_is_pinned_encrypted_private_and_managed(resources):
    database = resources["Database"]["Properties"]
    assert database["Engine"] == "postgres"
    # The major only: RDS upgrades minors by itself, so a pinned minor would drift.
    assert re.fullmatch(r"1[67]", database["EngineVersion"])
    assert database["AutoMinorVersionUpgrade"] is True
    assert database["StorageEncrypted"] is True
    assert database["PubliclyAccessible"] is False
    assert database["ManageMasterUserPassword"] is True
    assert "MasterUserPassword" not in database
    assert database["DeletionProtection"] == {"Fn::If": ["IsProd", True, False]}
    assert resources["Database"]["DeletionPolicy"] == "Snapshot"


def test_prod_condition_is_the_environment_parameter(cfn):
    assert cfn["Conditions"]["IsProd"] == {"Fn::Equals": [{"Ref": "Environment"}, "prod"]}
    assert cfn["Parameters"]["Environment"]["AllowedValues"] == ["dev", "prod"]


def test_rds_proxy_fronts_the_database_with_tls_and_scram(resources):
    proxy = resources["DatabaseProxy"]["Properties"]
    target = resources["DatabaseProxyTargetGroup"]["Properties"]
    assert proxy["RequireTLS"] is True
    assert proxy["EngineFamily"] == "POSTGRESQL"
    for entry in proxy["Auth"]:  # which secrets: test_each_function_connects_as_its_own_role...
        assert (entry["AuthScheme"], entry["IAMAuth"]) == ("SECRETS", "DISABLED")
        assert entry["ClientPasswordAuthType"] == "POSTGRES_SCRAM_SHA_256"
    assert target["DBInstanceIdentifiers"] == [{"Ref": "Database"}]


def test_functions_reach_aws_services_through_vpc_endpoints_not_the_internet(resources):
    endpoints = {
        resource["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1]: resource["Properties"]
        for resource in of_type(resources, "AWS::EC2::VPCEndpoint").values()
    }
    assert endpoints["sqs"]["PrivateDnsEnabled"] is True
    assert endpoints["secretsmanager"]["PrivateDnsEnabled"] is True
    assert endpoints["s3"]["VpcEndpointType"] == "Gateway"
    assert not of_type(resources, "AWS::EC2::InternetGateway")
    assert not of_type(resources, "AWS::EC2::NatGateway")


def test_the_deployer_chooses_the_two_zones(cfn, resources):
    """RDS Proxy is missing from some zones (use1-az3), and zone names differ per account."""
    zones = {}
    for name in ("PrivateSubnetA", "PrivateSubnetB"):
        properties = resources[name]["Properties"]
        assert "AvailabilityZone" not in properties  # a name, picked by !GetAZs, was the bug
        zones[name] = properties["AvailabilityZoneId"]["Ref"]
    assert len(set(zones.values())) == 2
    # Nothing chooses for the deployer: a deploy without both zones stops before any change.
    assert not rule_holds(cfn, "ZonesChosen", {})
    assert not rule_holds(cfn, "ZonesChosen", {zones["PrivateSubnetA"]: "use1-az1"})
    both = {zones["PrivateSubnetA"]: "use1-az1", zones["PrivateSubnetB"]: "use1-az2"}
    assert rule_holds(cfn, "ZonesChosen", both)
    assert "Fn::GetAZs" not in json.dumps(cfn)


@pytest.mark.parametrize(
    ("zone_a", "zone_b", "allowed"),
    [("use1-az1", "use1-az2", True), ("use1-az1", "use1-az1", False)],
)
def test_a_rule_refuses_the_same_zone_twice(cfn, zone_a, zone_b, allowed):
    parameters = {"PrivateSubnetAZoneId": zone_a, "PrivateSubnetBZoneId": zone_b}
    assert rule_holds(cfn, "TwoDifferentZones", parameters) is allowed


@pytest.mark.parametrize("zone", ["use1-az1", "usw2-az4", "apne1-az2", "euc1-az3"])
def test_zone_parameters_take_zone_ids(cfn, zone):
    for name in ("PrivateSubnetAZoneId", "PrivateSubnetBZoneId"):
        assert re.fullmatch(cfn["Parameters"][name]["AllowedPattern"], zone)
        assert not re.fullmatch(cfn["Parameters"][name]["AllowedPattern"], "us-east-1a")


def test_an_exhausted_proxy_pool_fails_before_any_function_times_out(resources):
    pool = resources["DatabaseProxyTargetGroup"]["Properties"]["ConnectionPoolConfigurationInfo"]
    timeouts = {
        name: f["Properties"]["Timeout"]
        for name, f in of_type(resources, "AWS::Lambda::Function").items()
        if f["Properties"]["Environment"]["Variables"]["DB_HOST"]
        == {"Fn::GetAtt": ["DatabaseProxy", "Endpoint"]}
    }
    assert set(timeouts) == {
        "IngestFunction",
        "StoreFunction",
        "AccountsFunction",
        "EmailFunction",
        "AggregateFunction",
        "ManageFunction",
        "MaintainFunction",
    }
    # At most half the shortest timeout: the rest is left to answer 503 or return the batch.
    assert 0 < pool["ConnectionBorrowTimeout"] * 2 <= min(timeouts.values())


def test_database_subnets_are_the_private_ones(resources):
    subnets = resources["DatabaseSubnetGroup"]["Properties"]["SubnetIds"]
    assert {referenced(s) for s in subnets} == {"PrivateSubnetA", "PrivateSubnetB"}
    for name in ("PrivateSubnetA", "PrivateSubnetB"):
        assert resources[name]["Properties"].get("MapPublicIpOnLaunch", False) is False


# --- migrations on deploy ---------------------------------------------------------


def test_a_custom_resource_runs_the_migrations_on_every_changed_deploy(resources):
    (name, migrations) = next(
        (n, r) for n, r in resources.items() if r["Type"] == "Custom::Migrations"
    )
    properties = migrations["Properties"]
    function = resources[migration_function(resources)]

    assert function["Type"] == "AWS::Lambda::Function"
    assert function["Properties"]["Handler"] == "app.handler"
    # A new function version (new .sql files) changes a property, so CloudFormation
    # sends an Update and the new migrations are applied.
    assert resources[referenced(properties["CodeVersion"])]["Type"] == "AWS::Lambda::Version"
    assert 0 < properties["ServiceTimeout"] <= 3600


def migration_function(resources) -> str:
    alias = resources[referenced(resources["Migrations"]["Properties"]["ServiceToken"])]
    return referenced(alias["Properties"]["FunctionName"])


def test_migrations_run_the_published_version_never_latest(resources):
    """The service token is the alias: the code CodeVersion names, not $LATEST mid-update.

    CloudFormation refuses to change a ServiceToken, so it must be the same ARN on
    every deploy: the alias's, not a version's.
    """
    properties = resources["Migrations"]["Properties"]
    alias = resources[referenced(properties["ServiceToken"])]

    assert alias["Type"] == "AWS::Lambda::Alias"
    assert properties["ServiceToken"] == {"Ref": "MigrateFunctionAliaslive"}  # a stable id
    assert referenced(alias["Properties"]["FunctionVersion"]) == referenced(
        properties["CodeVersion"]
    )


def test_the_migration_function_can_always_answer_cloudformation(resources):
    migrations = resources["Migrations"]
    function = resources[migration_function(resources)]["Properties"]
    gateway = next(
        name
        for name, r in of_type(resources, "AWS::EC2::VPCEndpoint").items()
        if r["Properties"]["VpcEndpointType"] == "Gateway"
    )
    route_tables = {referenced(t) for t in resources[gateway]["Properties"]["RouteTableIds"]}
    associations = of_type(resources, "AWS::EC2::SubnetRouteTableAssociation")

    # Every subnet the function runs in routes S3 (the response URL) through the gateway...
    for subnet in function["VpcConfig"]["SubnetIds"]:
        assert any(
            referenced(a["Properties"]["SubnetId"]) == referenced(subnet)
            and referenced(a["Properties"]["RouteTableId"]) in route_tables
            for a in associations.values()
        )
    # ...and that route outlives the custom resource on delete, and exists before create.
    assert gateway in migrations["DependsOn"]
    assert set(migrations["DependsOn"]) >= set(associations)
    # It answers before Lambda stops it, leaving time to deliver the response.
    assert function["Timeout"] < migrations["Properties"]["ServiceTimeout"]


def test_the_migration_function_finds_the_sql_where_the_build_puts_it(resources):
    env = resources["MigrateFunction"]["Properties"]["Environment"]["Variables"]
    assert env["MIGRATIONS_DIR"] == "/var/task/migrations"
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert 'cp migrations/*.sql "$(ARTIFACTS_DIR)/migrations/"' in makefile


# --- API ----------------------------------------------------------------------------


# A route is declared in three places, none generated from another: the template (an
# HttpApi event on the function that serves it), that function's resolver (a decorator
# in functions/<name>/app.py) and functions/manage/openapi.json. The test below reads
# all three and holds them equal, and which function serves a route is the template's
# word, checked against the resolver that registers it (so GET
# /api/logs/{app_id}/events/{event_id} is manage's: its role reads events, ingest's
# does not).

Route = tuple[str, str]  # (METHOD, path template with {names})
ANY = "ANY"  # API Gateway's x-amazon-apigateway-any-method


def template_routes(resources) -> dict[Route, dict[str, Any]]:
    """Every route of the HTTP API, as SAM builds it from the events: its integration."""
    (api,) = of_type(resources, "AWS::ApiGatewayV2::Api").values()
    return {
        (ANY if method == "x-amazon-apigateway-any-method" else method.upper(), path): operation[
            "x-amazon-apigateway-integration"
        ]
        for path, operations_ in api["Properties"]["Body"]["paths"].items()
        for method, operation in operations_.items()
    }


def integrated_function(integration: dict[str, Any]) -> str:
    """The function an integration invokes (its uri is `...${Function.Arn}/invocations`)."""
    match = re.search(r"\$\{(\w+)\.Arn\}", integration["uri"]["Fn::Sub"])
    assert match, integration
    return match.group(1)


def resolvers(sam_template) -> dict[str, APIGatewayHttpResolver]:
    """Each function whose handler module holds an HTTP resolver (`app`): its resolver.

    The module is the function's own (CodeUri + Handler), imported as the tests do.
    """
    found = {}
    for name, resource in sam_template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        folder = Path(properties["CodeUri"]).parts
        module = importlib.import_module(".".join([*folder, properties["Handler"].split(".")[0]]))
        app = getattr(module, "app", None)
        if isinstance(app, APIGatewayHttpResolver):
            found[name] = app
    return found


def registered_routes(app: APIGatewayHttpResolver) -> set[Route]:
    """The routes a Powertools resolver's decorators registered.

    Powertools keeps them in two internal lists (static and dynamic routes); if a new
    version keeps them elsewhere, this fails here rather than finding no routes.
    """
    routes = [*app._static_routes, *app._dynamic_routes]
    assert routes, "Powertools keeps its routes elsewhere now: read them there"
    return {(route.method, route.openapi_path) for route in routes}


def documented_routes() -> set[Route]:
    """The document's operations, and its catch-all (no operation: an extension names it)."""
    return {*operations(), (ANY, openapi_document()["x-unmatched-routes"]["path"])}


def greedy(route: Route) -> bool:
    """Whether this is the catch-all: any other method and path under /api/.

    API Gateway sends it to a function whose resolver answers with its not-found handler
    (404 route_not_found, tests/handlers/test_unknown_routes.py): no route registers it.
    """
    return route[1].endswith("{proxy+}")


def declarations(sam_template, resources) -> dict[Route, set[str]]:
    """Route -> where it is declared: the template, a resolver, the OpenAPI document."""
    sources = {
        "template.yaml": set(template_routes(resources)),
        "a resolver": {
            route for app in resolvers(sam_template).values() for route in registered_routes(app)
        },
        "openapi.json": documented_routes(),
    }
    found: dict[Route, set[str]] = {}
    for source, routes in sources.items():
        for route in routes:
            found.setdefault(route, set()).add(source)
    return found


def test_the_template_the_resolvers_and_the_openapi_document_declare_the_same_routes(
    sam_template, resources
):
    everywhere = {"template.yaml", "a resolver", "openapi.json"}

    missing = {}
    for route, sources in declarations(sam_template, resources).items():
        expected = everywhere - {"a resolver"} if greedy(route) else everywhere
        if expected - sources:
            missing[" ".join(route)] = sorted(expected - sources)

    assert missing == {}, (
        "declare each route in template.yaml, on its handler and in functions/manage/openapi.json"
    )


def test_each_route_goes_to_the_function_whose_resolver_registers_it(sam_template, resources):
    served = template_routes(resources)
    apps = resolvers(sam_template)
    registered_by = {
        route: function for function, app in apps.items() for route in registered_routes(app)
    }

    for route, integration in served.items():
        function = integrated_function(integration)
        assert integration["payloadFormatVersion"] == "2.0", route
        if greedy(route):
            assert function in apps, f"{route} goes to {function}, which has no resolver"
        else:
            assert registered_by.get(route) == function, f"{route} goes to {function}"
    # Each resolver's routes are its function's alone: no route is registered twice.
    assert sum(len(registered_routes(app)) for app in apps.values()) == len(registered_by)


def test_cors_origins_are_a_parameter(cfn, resources):
    (api,) = of_type(resources, "AWS::ApiGatewayV2::Api").values()
    condition, cors, otherwise = api["Properties"]["Body"]["x-amazon-apigateway-cors"]["Fn::If"]
    assert condition == "HasCorsOrigins"
    # The parameter, resolved by SAM (to its default here).
    default = cfn["Parameters"]["CorsAllowedOrigins"]["Default"]
    assert cors["allowOrigins"] == {"Fn::Split": [",", default]}
    assert {"x-api-key", "authorization"} <= set(cors["allowHeaders"])
    assert otherwise == {"Ref": "AWS::NoValue"}


def test_a_deploy_names_its_cors_origins(cfn):
    """prod's samconfig had a placeholder origin (app.example.com) that deployed as is."""
    parameter = cfn["Parameters"]["CorsAllowedOrigins"]
    pattern = re.compile(parameter["AllowedPattern"])
    # Nothing chooses for the deployer: the empty default stops a deploy before any change...
    assert parameter["Default"] == ""
    assert not rule_holds(cfn, "CorsOriginsChosen", {})
    # ...and each real choice passes: any origin, none (server-side senders only), a list.
    choices = [
        "*",
        "none",
        "https://app.example.org",
        "https://a.example.org,http://localhost:8080",
    ]
    for chosen in choices:
        assert pattern.match(chosen), chosen
        assert rule_holds(cfn, "CorsOriginsChosen", {"CorsAllowedOrigins": chosen}), chosen
    assert not pattern.match("app.example.org")  # an origin has a scheme
    # "none" is the one choice without a CORS configuration.
    assert cfn["Conditions"]["HasCorsOrigins"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CorsAllowedOrigins"}, "none"]}]
    }
    # dev allows any origin; prod names none, so its first deploy stops until the
    # deployer writes theirs (docs/operating-in-aws.md).
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text())
    overrides = {
        env: dict(
            item.split("=", 1)
            for item in config[env]["deploy"]["parameters"]["parameter_overrides"].split()
        )
        for env in ("dev", "prod")
    }
    assert overrides["dev"]["CorsAllowedOrigins"] == "*"
    assert "CorsAllowedOrigins" not in overrides["prod"]


def test_cors_lets_browsers_send_segment_calls(resources):
    # analytics-next posts text/plain with Authorization and X-Retry-Count: a preflight.
    (api,) = of_type(resources, "AWS::ApiGatewayV2::Api").values()
    _, cors, _ = api["Properties"]["Body"]["x-amazon-apigateway-cors"]["Fn::If"]
    assert {"content-type", "authorization", "x-retry-count"} <= set(cors["allowHeaders"])
    assert "POST" in cors["allowMethods"]
    assert "/v1/{call}" in api["Properties"]["Body"]["paths"]


def test_default_route_throttling_comes_from_parameters(resources):
    (stage,) = of_type(resources, "AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    assert "DestinationArn" in stage["Properties"]["AccessLogSettings"]


# --- outputs and environments -----------------------------------------------------


def test_outputs_name_what_operators_need(cfn):
    assert {
        "ApiUrl",
        "AccountsUrl",
        "EventsQueueUrl",
        "EventsDeadLetterQueueUrl",
        "EmailQueueUrl",
        "EmailDeadLetterQueueUrl",
        "DatabaseSecretArn",
    } <= set(cfn["Outputs"])


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_samconfig_has_a_stack_per_environment(env):
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text())
    deploy = config[env]["deploy"]["parameters"]

    assert deploy["stack_name"] == f"sluice-{env}"
    assert f"Environment={env}" in deploy["parameter_overrides"].split()
    assert "CAPABILITY_IAM" in deploy["capabilities"]


# --- aggregations -------------------------------------------------------------------


def test_the_aggregate_function_runs_on_the_schedule_parameter(cfn, resources):
    rules = {
        name: rule
        for name, rule in of_type(resources, "AWS::Events::Rule").items()
        if any(referenced(t["Arn"]) == "AggregateFunction" for t in rule["Properties"]["Targets"])
    }
    (rule,) = rules.values()
    assert rule["Properties"]["ScheduleExpression"] == {"Ref": "AggregateSchedule"}
    assert cfn["Parameters"]["AggregateSchedule"]["Default"] == "rate(5 minutes)"
    pattern = cfn["Parameters"]["AggregateSchedule"]["AllowedPattern"]
    assert re.fullmatch(pattern, "cron(0/5 * * * ? *)")
    assert not re.fullmatch(pattern, "every 5 minutes")
    env = resources["AggregateFunction"]["Properties"]["Environment"]["Variables"]
    assert env["AGGREGATE_CHUNK_SIZE"] == {"Ref": "AggregateChunkSize"}
    assert int(cfn["Parameters"]["AggregateChunkSize"]["MaxValue"]) <= 100_000


# --- retention (issue 14) ------------------------------------------------------


def test_the_maintain_function_runs_on_the_schedule_parameter(cfn, resources):
    (rule,) = [
        rule
        for rule in of_type(resources, "AWS::Events::Rule").values()
        if any(referenced(t["Arn"]) == "MaintainFunction" for t in rule["Properties"]["Targets"])
    ]
    assert rule["Properties"]["ScheduleExpression"] == {"Ref": "MaintainSchedule"}
    assert cfn["Parameters"]["MaintainSchedule"]["Default"] == "rate(1 hour)"
    env = resources["MaintainFunction"]["Properties"]["Environment"]["Variables"]
    assert env["ARCHIVE_BUCKET"] == {"Ref": "ArchiveBucket"}
    assert env["DEDUP_WINDOW_HOURS"] == {"Ref": "DedupWindowHours"}
    assert cfn["Parameters"]["DedupWindowHours"]["Default"] == 72


def test_the_maintain_function_may_write_only_under_the_archives_prefix(resources):
    from datetime import date

    from sluice.retention.archive import PREFIX, day_prefix

    s3 = [
        statement
        for owner, statement in statements(resources)
        if any(a.startswith("s3:") for a in as_list(statement["Action"]))
    ]
    # Only the maintain function's role is allowed anything in S3 (the bucket policy denies)
    allowed = {o for o, st in statements(resources) if st in s3 and st["Effect"] == "Allow"}
    assert allowed == {"MaintainFunctionRole"}
    for owner, statement in statements(resources):
        if owner != "MaintainFunctionRole" or statement not in s3:
            continue
        actions = as_list(statement["Action"])
        assert "s3:GetObject" not in actions and not any("*" in a for a in actions)
        if actions == ["s3:ListBucket"]:
            assert statement["Resource"] == {"Fn::GetAtt": ["ArchiveBucket", "Arn"]}
            # Listing is a bucket-wide action: the condition keeps it under the archive's
            # prefix, where every key the maintain function lists lies.
            assert statement["Condition"] == {"StringLike": {"s3:prefix": [f"{PREFIX}/*"]}}
            assert day_prefix("app_x", date(2026, 3, 1)).startswith(f"{PREFIX}/")
        else:
            assert statement["Resource"] == {"Fn::Sub": "${ArchiveBucket.Arn}/events/*"}


def test_the_archive_is_private_encrypted_and_athena_reads_its_layout(resources):
    from sluice.retention.archive import object_key

    bucket = resources["ArchiveBucket"]
    assert bucket["DeletionPolicy"] == "Retain"
    props = bucket["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (deny,) = resources["ArchiveBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    # The table's projection names the keys the maintain function writes
    table = resources["ArchiveTable"]["Properties"]["TableInput"]
    template = table["Parameters"]["storage.location.template"]["Fn::Sub"]
    assert template == "s3://${ArchiveBucket}/events/app_id=${!app_id}/date=${!date}/"
    from datetime import date

    key = object_key("app_x", date(2026, 3, 1), 0)
    assert key.startswith("events/app_id=app_x/date=2026-03-01/")
    assert [k["Name"] for k in table["PartitionKeys"]] == ["app_id", "date"]
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == (
        "org.openx.data.jsonserde.JsonSerDe"
    )


def test_athenas_archive_table_has_the_archived_lines_columns(resources):
    from sluice.store.events_table import SHOWN

    table = resources["ArchiveTable"]["Properties"]["TableInput"]
    keys = [k["Name"] for k in table["PartitionKeys"]]
    columns = [c["Name"] for c in table["StorageDescriptor"]["Columns"]]
    # A line holds every column an event is shown with (sluice.retention.partitions);
    # the app is the object's folder, a partition key.
    assert columns == [name for name in SHOWN if name not in keys]


def parameter_accepts(cfn: dict[str, Any], name: str, value: int) -> bool:
    """Whether CloudFormation takes this value for a Number parameter (before any change)."""
    spec = cfn["Parameters"][name]
    return spec.get("MinValue", value) <= value <= spec.get("MaxValue", value)


def test_the_storage_maximum_is_always_a_tenth_above_the_allocation(cfn):
    # RDS refuses a MaxAllocatedStorage under 110 % of AllocatedStorage, mid-deploy.
    # Rules cannot compare numbers, so the two ranges are chosen to meet RDS's rule
    # whatever pair a deployer picks within them.
    allocated = cfn["Parameters"]["DatabaseAllocatedStorage"]
    maximum = cfn["Parameters"]["DatabaseMaxAllocatedStorage"]
    assert maximum["MinValue"] * 10 >= allocated["MaxValue"] * 11
    assert maximum["Default"] * 10 >= allocated["Default"] * 11
    # A pair RDS would refuse never reaches it.
    for bad_allocated, bad_maximum in ((500, 540), (100, 105), (25, 22)):
        assert not (
            parameter_accepts(cfn, "DatabaseAllocatedStorage", bad_allocated)
            and parameter_accepts(cfn, "DatabaseMaxAllocatedStorage", bad_maximum)
        ), (bad_allocated, bad_maximum)
    assert parameter_accepts(cfn, "DatabaseAllocatedStorage", 100)
    assert parameter_accepts(cfn, "DatabaseMaxAllocatedStorage", 2048)


def test_a_maximum_near_reach_is_mailed_whatever_the_disk_has_grown_to(resources):
    """FreeStorageSpace has no allocated size beside it: RDS's own event says "near the maximum"."""
    ((name, rule),) = [
        (name, rule)
        for name, rule in of_type(resources, "AWS::Events::Rule").items()
        if rule["Properties"].get("EventPattern", {}).get("source") == ["aws.rds"]
    ]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["RDS DB Instance Event"]
    assert pattern["detail"]["SourceIdentifier"] == [{"Ref": "Database"}]
    # The storage size is approaching the maximum storage threshold.
    assert pattern["detail"]["EventID"] == ["RDS-EVENT-0225"]
    assert rule["Condition"] == resources["AlarmTopic"]["Condition"]
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": "AlarmTopic"}
    # The topic lets EventBridge publish for that rule alone. A topic policy replaces
    # SNS's default one, so it lets the account's alarms publish too, or none would.
    (policy,) = of_type(resources, "AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["Topics"] == [{"Ref": "AlarmTopic"}]
    assert policy["Condition"] == resources["AlarmTopic"]["Condition"]
    this_accounts_alarms = (
        "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"
    )
    publishers = {
        statement["Principal"]["Service"]: statement["Condition"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Allow"
        and statement["Action"] == "sns:Publish"
        and statement["Resource"] == {"Ref": "AlarmTopic"}
    }
    assert publishers == {
        "events.amazonaws.com": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [name, "Arn"]}}},
        "cloudwatch.amazonaws.com": {
            "ArnLike": {"aws:SourceArn": {"Fn::Sub": this_accounts_alarms}}
        },
    }
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    assert alarms and all(
        alarm["Properties"]["AlarmActions"]
        == {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]}
        for alarm in alarms.values()
    )


def test_storage_grows_to_a_parameter_and_an_alarm_warns_before_it_ends(cfn, resources):
    props = resources["Database"]["Properties"]
    assert props["MaxAllocatedStorage"] == {"Ref": "DatabaseMaxAllocatedStorage"}
    assert (
        cfn["Parameters"]["DatabaseMaxAllocatedStorage"]["Default"]
        > (cfn["Parameters"]["DatabaseAllocatedStorage"]["Default"])
    )
    alarm = resources["FreeStorageSpaceAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/RDS", "FreeStorageSpace")
    assert alarm["Dimensions"] == [{"Name": "DBInstanceIdentifier", "Value": {"Ref": "Database"}}]
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["AlarmActions"] == resources["DeadLetterQueueAlarm"]["Properties"]["AlarmActions"]
