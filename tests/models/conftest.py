"""Fixtures for the tests of deepscem/models (shared ones live in tests/conftest.py)."""
