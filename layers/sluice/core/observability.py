"""Logger, tracer and metrics, created once for every module of a function."""

from aws_lambda_powertools import Logger, Metrics, Tracer

# Service name, namespace and level come from POWERTOOLS_* variables (template Globals).
logger = Logger()
tracer = Tracer()
metrics = Metrics()
