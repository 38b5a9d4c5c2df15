"""Managing apps, keys, rules and reading events: the management API's and operators' side."""
