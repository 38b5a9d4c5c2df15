"""Operator commands run from the repository (never shipped to Lambda)."""
