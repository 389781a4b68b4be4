"""Conformance kit: checks any running implementation against openapi.yaml and DESIGN D4-D8."""
