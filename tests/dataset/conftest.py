"""Fixtures for the tests of deepscem/dataset (shared ones live in tests/conftest.py)."""
