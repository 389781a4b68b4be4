"""Helpers shared by the tests: the real mock process, a Redis server, ids of the fixtures."""
