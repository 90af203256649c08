"""Fixtures for the tests of deepscem/commands (shared ones live in tests/conftest.py)."""
