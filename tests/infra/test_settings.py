"""The functions' environment in template.yaml obeys the settings spec in sluice.core.config.

Each setting's variable, default and bounds are written once, in sluice.core.config; the
template may only give a function variables its settings read, with values (or
parameters whose Default, MinValue and MaxValue are) within the spec's bounds, and a
value other than the spec's default only where DIFFERENT_ON_PURPOSE says why.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sluice.core import config
from sluice.core.errors import ConfigurationError

from tests.infra.stack import REPO_ROOT, of_type

# Which settings each function reads at cold start.
FUNCTION_SETTINGS = {
    "IngestFunction": config.IngestSettings,
    "StoreFunction": config.StoreSettings,
    "AccountsFunction": config.AccountsSettings,
    "EmailFunction": config.EmailSettings,
    "AggregateFunction": config.AggregateSettings,
    "ManageFunction": config.ManageSettings,
    "MigrateFunction": config.MigrateSettings,
    "MaintainFunction": config.MaintainSettings,
}

# Powertools reads these itself (service name, namespace, log level, tracer).
POWERTOOLS = "POWERTOOLS_"

# (function, variable) -> why the template sets something other than the spec's default.
DIFFERENT_ON_PURPOSE = {
    ("MigrateFunction", "DB_CONNECT_TIMEOUT_SECONDS"): (
        "straight to the instance, which may still be starting during the first deploy"
    ),
    ("MigrateFunction", "DB_SSLMODE"): (
        "the instance's RDS-CA certificate is not in certifi; TLS is still required"
    ),
    ("MaintainFunction", "AWS_READ_TIMEOUT_SECONDS"): (
        "8 MiB archive parts to S3, and a minute before its deadline to fail in"
    ),
    ("MaintainFunction", "AWS_MAX_ATTEMPTS"): (
        "a scheduled run has the time to retry a part; the HTTP functions do not"
    ),
}


class _Recording(dict):
    """An environment that notes every variable asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def variables_read(settings: Any) -> set[str]:
    environ = _Recording()
    with pytest.raises(ConfigurationError):  # required ones are missing: read them all anyway
        settings.from_env(environ)
    return environ.asked


def problems(setting: config.Setting, raw: Any) -> tuple[list[str], Any]:
    """What reading `raw` as this setting complains about, and the value it reads."""
    env = config._Reader({setting.variable: str(raw)})
    value = setting.read(env)
    return env.problems, value


def environments(resources) -> Iterator[tuple[str, str, Any]]:
    for name, function in of_type(resources, "AWS::Lambda::Function").items():
        for variable, value in function["Properties"]["Environment"]["Variables"].items():
            yield name, variable, value


def test_the_spec_covers_every_variable_the_settings_read():
    read = set().union(*(variables_read(s) for s in FUNCTION_SETTINGS.values()))
    assert read <= set(config.SETTINGS)
    for variable, setting in config.SETTINGS.items():
        assert setting.variable == variable
        if setting.default is not None and not isinstance(setting, config.Text):
            # A default is a value the spec itself allows.
            assert problems(setting, setting.default)[0] == [], variable


def test_every_function_is_given_only_variables_its_settings_read(resources):
    assert set(of_type(resources, "AWS::Lambda::Function")) == set(FUNCTION_SETTINGS)
    for name, variable, _ in environments(resources):
        if variable.startswith(POWERTOOLS):
            continue
        assert variable in config.SETTINGS, f"{name}: {variable} is in no spec"
        assert variable in variables_read(FUNCTION_SETTINGS[name]), f"{name} never reads {variable}"


def test_every_literal_in_the_template_obeys_the_spec(resources):
    checked = 0
    for name, variable, value in environments(resources):
        if variable.startswith(POWERTOOLS) or not isinstance(value, str):
            continue
        setting = config.SETTINGS[variable]
        found, read = problems(setting, value)
        assert found == [], f"{name}: {found}"
        if (name, variable) not in DIFFERENT_ON_PURPOSE and setting.default is not None:
            assert read == setting.default, (
                f"{name}: {variable}={value!r}, the spec says {setting.default!r}"
            )
        checked += 1
    assert checked >= 10


def test_every_parameter_a_setting_takes_stays_within_the_spec(cfn, resources):
    checked = 0
    for name, variable, value in environments(resources):
        if variable.startswith(POWERTOOLS) or not (isinstance(value, dict) and "Ref" in value):
            continue
        parameter = cfn["Parameters"].get(value["Ref"])
        if parameter is None:
            continue  # a resource's name or ARN
        setting = config.SETTINGS[variable]
        default = parameter.get("Default")
        if isinstance(setting, config.Required) and default == "":
            # Only so tools can read the template: a rule refuses it in a deploy.
            empty = {"Fn::Not": [{"Fn::Equals": [{"Ref": value["Ref"]}, ""]}]}
            assert json.dumps(empty) in json.dumps(cfn["Rules"]), f"no rule refuses {value['Ref']}"
            continue
        found, read = problems(setting, default)
        assert found == [], f"{name}: {value['Ref']}'s Default: {found}"
        if (name, variable) not in DIFFERENT_ON_PURPOSE and setting.default is not None:
            assert read == setting.default, f"{value['Ref']}'s Default is not {variable}'s"
        for bound in ("MinValue", "MaxValue"):
            if bound in parameter:
                found, _ = problems(setting, parameter[bound])
                assert found == [], f"{value['Ref']}'s {bound}: {found}"
        if getattr(setting, "maximum", None) is not None:
            assert "MaxValue" in parameter, f"{value['Ref']} has no MaxValue; {variable} has one"
        for allowed in parameter.get("AllowedValues", []):
            assert problems(setting, allowed)[0] == [], f"{value['Ref']} allows {allowed}"
        checked += 1
    assert checked >= 4


def test_the_local_settings_obey_the_spec_too():
    local = json.loads((REPO_ROOT / "local-env.json").read_text())
    for function, variables in local["Environment"].items():
        for variable, value in variables.items():
            assert variable in config.SETTINGS, f"local-env.json {function}: {variable}"
            if isinstance(value, str):
                assert problems(config.SETTINGS[variable], value)[0] == [], variable
