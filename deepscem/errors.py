"""Errors the user can act on.

Every error raised for bad user input is a :class:`DeepScemError` whose message is one
line that says what is wrong and what to do. They are caught in exactly two places:
``deepscem.cli.main`` (prints ``error: <message>``, exit code 1) and the GUI's error
handler (a message box). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class DeepScemError(Exception):
    """Base class: a problem the user can fix; ``str(err)`` is shown to them as is."""


class InputFileError(DeepScemError):
    """An image or label file that cannot be used (missing, unreadable, RGB, non-binary...)."""


class DatasetError(DeepScemError):
    """A dataset file that is not a DeepSCEM dataset, or a sample that breaks its rules."""


class ModelError(DeepScemError):
    """A model file that cannot be loaded or does not fit the data."""


class ConfigError(DeepScemError):
    """An option value that is impossible (patch larger than a sample, negative steps...)."""


class Cancelled(DeepScemError):
    """The user cancelled a long operation; whatever it was writing was rolled back."""

    def __init__(self, message: str = "cancelled by the user") -> None:
        super().__init__(message)


class DeepScemWarning(UserWarning):
    """Something the user should know that does not stop the work (e.g. a model from the
    original DeepSCEM with a single-output softmax). The CLI prints it as ``warning: ...``;
    the test suite turns an unexpected one into an error."""


class Interrupted(Cancelled):
    """The command line got Ctrl+C (SIGINT) or SIGTERM; it stopped at a safe point."""
