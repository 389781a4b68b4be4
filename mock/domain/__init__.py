"""The mock's rules in plain Python: no web framework is imported below this package."""
