"""One dialog per core action. Each builds a config/request object and validates it
before closing; the main window then runs the action in a worker.

Tests drive them without ``exec_()``: fill the widgets, call :meth:`ConfigDialog.build`
(or ``accept()``) and read ``dialog.value``.
"""
