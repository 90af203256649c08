"""Fixtures for the tests of deepscem/postprocessing (shared ones live in tests/conftest.py)."""
