"""The GUI's one error handler: every failure becomes a message box, never a crash.

A :class:`deepscem.errors.DeepScemError` is a problem the user can fix: its one-line
message is shown as is. Anything else is a bug: a short traceback is shown (and printed
on stderr) so it can be reported, and the window stays usable.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

from PyQt5.QtWidgets import QMessageBox, QWidget

from deepscem.errors import DeepScemError

TRACEBACK_LINES = 12


def error_text(err: BaseException) -> str:
    """What the message box says for ``err``."""
    if isinstance(err, DeepScemError):
        return str(err)
    lines = traceback.format_exception(type(err), err, err.__traceback__)
    short = "".join(lines).strip().splitlines()[-TRACEBACK_LINES:]
    return (f"Unexpected error: {type(err).__name__}: {err}\n\n"
            "Please report it with the details below.\n\n" + "\n".join(short))


def plain_title(title: str) -> str:
    """A menu text as a window title: ``"&Quit..."`` -> ``"Quit"`` (``"&&"`` stays ``"&"``)."""
    return title.replace("&&", "\0").replace("&", "").replace("\0", "&").replace("...", "").strip()


def show_error(parent: QWidget | None, err: BaseException, title: str = "DeepSCEM") -> None:
    """Show ``err`` in a message box (warning for user errors, critical for bugs)."""
    title = plain_title(title) or "DeepSCEM"
    if isinstance(err, DeepScemError):
        QMessageBox.warning(parent, title, error_text(err))
        return
    traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
    QMessageBox.critical(parent, title, error_text(err))


def positional_arity(slot: Callable[..., Any]) -> int | None:
    """How many signal arguments ``slot`` should get; None = all of them (it takes ``*args``).

    Python callables: their required positional parameters (so ``clicked(bool)`` never lands
    in an optional parameter). Qt's own methods (``close``, ``toggle``, ``setChecked``) have
    no Python signature; their docstring lists the overloads, e.g. ``"update(self)\n
    update(self, a0: QRect)"``: the fewest parameters of any overload, so ``triggered(bool)``
    is not passed to ``close()`` (a TypeError) while ``toggled(bool)`` still reaches
    ``setChecked(bool)``.
    """
    try:
        params = inspect.signature(slot).parameters.values()
    except (TypeError, ValueError):
        counts = []
        for line in (getattr(slot, "__doc__", None) or "").splitlines():
            match = _OVERLOAD.match(line.strip())
            if match:
                names = [p.strip() for p in match.group(1).split(",") if p.strip()]
                counts.append(sum(1 for p in names if p != "self" and "=" not in p))
        return min(counts) if counts else 0
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
               for p in params)


_OVERLOAD = re.compile(r"^\w+\((.*)\)(\s*->.*)?$")


def guard(parent: QWidget | None, slot: Callable[..., Any], title: str = "DeepSCEM") -> Callable[..., None]:
    """Wrap a slot so any exception it raises becomes a message box (the window lives on).

    The slot gets as many of the signal's arguments as it takes (:func:`positional_arity`).
    """
    takes = positional_arity(slot)

    @functools.wraps(slot)
    def wrapper(*args: Any) -> None:
        try:
            slot(*(args if takes is None else args[:takes]))
        except Exception as err:  # noqa: BLE001 - the one place errors become dialogs
            show_error(parent, err, title)

    return wrapper


def install_excepthook(parent_getter=lambda: None) -> None:
    """Route exceptions escaping Qt slots to :func:`show_error`.

    PyQt5 aborts the process on an unhandled exception in a slot unless ``sys.excepthook``
    is replaced, which is exactly the crash users must never see.
    """

    def hook(kind: type[BaseException], err: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, err, tb)
            return
        if err.__traceback__ is None:
            err = err.with_traceback(tb)
        show_error(parent_getter(), err)

    sys.excepthook = hook
