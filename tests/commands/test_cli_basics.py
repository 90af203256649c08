import subprocess
import sys
from pathlib import Path

import pytest

from deepscem import cli
from deepscem.errors import DeepScemError
from deepscem.progress import CancelToken, Progress, TqdmProgress, check, emit

ROOT = Path(__file__).resolve().parents[2]


def test_help_is_instant_and_never_imports_tensorflow():
    code = (
        "import sys, contextlib, io\n"
        "from deepscem import cli\n"
        "sub = [a for a in cli.build_parser()._actions if a.dest == 'command'][0]\n"
        "argvs = [['--help'], ['--legacy-help']] + [[c, '--help'] for c in sub.choices]\n"
        "for name, p in sub.choices.items():\n"
        "    inner = [a for a in p._actions if a.dest == 'action']\n"
        "    argvs += [[name, s, '--help'] for s in (inner[0].choices if inner else [])]\n"
        "for argv in argvs:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            cli.main(argv)\n"
        "        except SystemExit as e:\n"
        "            assert e.code == 0, argv\n"
        "bad = [m for m in ('tensorflow', 'keras', 'torch', 'PyQt5', 'h5py') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["no-such-command"])
    assert exc.value.code == 2


def test_core_never_imports_qt():
    offenders = []
    for path in (ROOT / "deepscem").rglob("*.py"):
        for line in path.read_text().splitlines():
            s = line.strip()
            if s.startswith(("import PyQt", "from PyQt", "import PySide", "from PySide")):
                offenders.append(str(path))
    assert offenders == []


def test_cancel_token_and_progress():
    seen = []
    emit(seen.append, 1, 4, unit="slabs", loss=0.5)
    emit(None, 1, 4)
    assert seen == [Progress(1, 4, "slabs", "", {"loss": 0.5})]
    assert seen[0].fraction == 0.25
    token = CancelToken()
    check(token)
    token.cancel()
    with pytest.raises(DeepScemError):
        check(token)
    with TqdmProgress("t", disable=True) as bar:
        bar(Progress(1, 2))


def test_debug_flag_is_accepted_after_the_command(tmp_path, capsys):
    missing = str(tmp_path / "missing.hdf5")
    assert cli.main(["dataset", "info", missing, "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error:")
    assert cli.main(["dataset", "info", missing]) == 1
    assert "Traceback" not in capsys.readouterr().err
