"""ui.errors: user errors show their message, bugs a short traceback; slots never crash."""

from __future__ import annotations

import sys

from deepscem.errors import ConfigError
from ui.errors import error_text, guard, install_excepthook

pytest_plugins = ["gui_fixtures"]


def test_error_text():
    assert error_text(ConfigError("patch too large; use 64")) == "patch too large; use 64"
    try:
        {}["missing"]
    except KeyError as err:
        text = error_text(err)
    assert text.startswith("Unexpected error: KeyError") and "test_errors.py" in text


def test_guard_turns_exceptions_into_message_boxes_and_drops_extra_signal_args(messages):
    calls = []

    def slot(value=None):
        calls.append(value)
        raise ConfigError("bad value")

    guard(None, slot)(True)  # Qt's clicked(bool): not passed to an optional parameter
    assert calls == [None] and messages.shown == [("warning", "DeepSCEM", "bad value")]


def test_excepthook_shows_a_message_box(messages, monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    install_excepthook()
    try:
        raise RuntimeError("bug in a slot")
    except RuntimeError as err:
        sys.excepthook(type(err), err, err.__traceback__)
    assert messages.kinds() == ["critical"] and "RuntimeError: bug in a slot" in messages.texts()
