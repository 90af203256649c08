"""Fixtures for the tests of deepscem/training (shared ones live in tests/conftest.py)."""
