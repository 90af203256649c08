"""GUI tests never read or write the user's settings (ui.view_settings)."""

import pytest


@pytest.fixture(autouse=True)
def _own_settings(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("DEEPSCEM_SETTINGS_DIR", str(tmp_path_factory.mktemp("settings")))
