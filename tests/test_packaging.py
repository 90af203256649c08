"""The installed package: every package folder is listed in pyproject.toml, nothing generic
(`run`, `ui`) lands in site-packages, and a real `pip install` gives a working `deepscem`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _package_folders() -> set[str]:
    names = set()
    for init in ROOT.glob("deepscem/**/__init__.py"):
        names.add(".".join(init.parent.relative_to(ROOT).parts))
    for init in ROOT.glob("ui/**/__init__.py"):
        names.add(".".join(("deepscem_ui",) + init.parent.relative_to(ROOT / "ui").parts))
    return names


def test_every_package_folder_is_installed_and_nothing_generic():
    setuptools = _pyproject()["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    assert listed == _package_folders(), "list new package folders in pyproject.toml [tool.setuptools]"
    assert "py-modules" not in setuptools                      # no top-level `run` module
    assert not any(p == "ui" or p.startswith("ui.") for p in listed)
    assert setuptools["package-dir"] == {"deepscem_ui": "ui"}


def test_gui_package_imports_itself_relatively():
    """ui/ is installed as `deepscem_ui`, so an absolute `from ui.x import` would break there."""
    offenders = [f"{path.relative_to(ROOT)}:{n}" for path in (ROOT / "ui").rglob("*.py")
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if line.strip().startswith(("from ui.", "import ui.", "from ui import"))]
    assert offenders == []


def test_dependencies_cover_what_the_core_imports():
    deps = " ".join(_pyproject()["project"]["dependencies"]).lower()
    for needed in ("matplotlib", "h5py", "tifffile", "scipy", "keras", "pyqt5"):
        assert needed in deps


@pytest.mark.slow
def test_pip_install_gives_a_working_deepscem_command(tmp_path):
    """A clean venv that sees this one's dependencies (a .pth file), the project built and
    installed by pip (build isolation: setuptools comes from the package index); then the
    installed command runs outside the checkout."""
    import site

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    inner = subprocess.run([str(py), "-c", "import site; print(site.getsitepackages()[0])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    (Path(inner) / "outer.pth").write_text(site.getsitepackages()[0] + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(ROOT)], check=True)
    env = {**os.environ, "PYTHONPATH": ""}
    out = subprocess.run([str(venv / "bin" / "deepscem"), "--help"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True)
    assert "dataset" in out.stdout
    check = subprocess.run([str(py), "-c", "import deepscem_ui.app, deepscem.cli as c; "
                            "print(c.gui_package())"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True)
    assert check.stdout.strip() == "deepscem_ui"
    assert subprocess.run([str(py), "-c", "import run"], cwd=tmp_path, env=env).returncode != 0
