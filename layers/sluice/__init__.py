"""Sluice's shared package: the domain, its data access and its plumbing.

Every function imports it through the Lambda layer; tests and local tools import
the same files through an editable install.
"""
