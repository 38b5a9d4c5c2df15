"""The dashboard and the alarms of a translated template, for the suites that check them."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.infra.stack import of_type

SUBSTITUTION = re.compile(r"\$\{([^}]+)\}")


def dashboard_body(resources: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], set[str]]:
    """The one dashboard's body as JSON, and the names its ${...} substitutions refer to."""
    [dashboard] = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    text = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(SUBSTITUTION.findall(text))
    return json.loads(SUBSTITUTION.sub(lambda m: m.group(1), text)), names


def widget_metrics(widget: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric name, dimensions) of each line a metric widget draws."""
    lines = []
    for line in widget["properties"].get("metrics", []):
        fields = [part for part in line if isinstance(part, str)]
        namespace, name, *pairs = fields
        lines.append((namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return lines


def alarm_metrics(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric name, dimensions) of every metric an alarm reads."""
    properties = alarm["Properties"]
    found = []
    if "MetricName" in properties:
        found.append((properties["Namespace"], properties["MetricName"], properties["Dimensions"]))
    for query in properties.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            found.append((metric["Namespace"], metric["MetricName"], metric["Dimensions"]))
    return [
        (namespace, name, {d["Name"]: d["Value"] for d in dimensions})
        for namespace, name, dimensions in found
    ]


def alarms(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return of_type(resources, "AWS::CloudWatch::Alarm")


def sluice_metric_names(resources: dict[str, dict[str, Any]]) -> set[str]:
    """Every metric of the Sluice namespace (what the functions print) the stack reads."""
    body, _ = dashboard_body(resources)
    lines = [line for widget in body["widgets"] for line in widget_metrics(widget)]
    lines += [line for alarm in alarms(resources).values() for line in alarm_metrics(alarm)]
    return {name for namespace, name, _ in lines if namespace == "Sluice"}
