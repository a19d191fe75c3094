"""Fixtures for the hardware tests: ``factory`` (a fresh mock pin factory per test,
never the global) comes from tests/conftest.py, shared with the service tests."""
