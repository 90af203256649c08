"""Qt stays in ui/: no module of the core imports PyQt5 (or the GUI), statically checked."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "deepscem"


def test_core_never_imports_qt_or_the_gui():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(CORE.parent)}: {n}" for n in names
                          if n.split(".")[0] in ("PyQt5", "PyQt6", "PySide2", "PySide6", "qtpy", "ui")]
    # cli.open_gui is the one door into the GUI (by name, through importlib, only when asked for).
    assert offenders == [], offenders
