"""Fixtures for the tests of deepscem/inference (shared ones live in tests/conftest.py)."""
