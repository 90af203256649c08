"""Fixtures for the tests of deepscem/evaluation (shared ones live in tests/conftest.py)."""
