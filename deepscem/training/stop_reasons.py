"""Why a training run stopped: the one list (a leaf module, imported by the trainer, the CLI,
the GUI and the docs' table).

A ``str`` enum, so a reason compares equal to its text, prints as it, and goes into the
model's history JSON and the CSV log as that text:

>>> StopReason.NAN == "nan", str(StopReason.TIME_LIMIT), f"{StopReason.EARLY_STOPPING}"
(True, 'time limit', 'early stopping')
"""

from __future__ import annotations

from enum import Enum


class StopReason(str, Enum):
    COMPLETED = "completed"              # every epoch ran
    CANCELLED = "cancelled"              # the user (Cancel, Ctrl+C) stopped it; best weights kept
    NAN = "nan"                          # the loss became NaN/inf; last good weights kept
    EARLY_STOPPING = "early stopping"    # no validation improvement for `patience` epochs
    TIME_LIMIT = "time limit"            # the run reached its time budget

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)
