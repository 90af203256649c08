"""Ctrl+C / SIGTERM on the command line stop at a safe point and exit 1; plain progress lines
without a terminal (deepscem.interrupts, deepscem.progress)."""

from __future__ import annotations

import io
import os
import re
import signal

import pytest

from deepscem import cli
from deepscem import progress as prog
from deepscem.errors import Interrupted
from deepscem.interrupts import InterruptHandler
from deepscem.outputs import atomic_path


@pytest.mark.parametrize("signum, name", [(signal.SIGINT, "Ctrl+C"), (signal.SIGTERM, "SIGTERM")])
def test_first_signal_stops_at_the_next_check_and_removes_the_temp(tmp_path, signum, name):
    dst = tmp_path / "out.hdf5"
    with InterruptHandler() as handler:
        with pytest.raises(Interrupted, match=f"interrupted by {re.escape(name)}"):
            with atomic_path(dst) as tmp:
                tmp.write_bytes(b"half")
                os.kill(os.getpid(), signum)  # handled here: no exception yet
                assert handler.token.cancelled
                prog.check(None)  # the safe point
    assert os.listdir(tmp_path) == []
    assert signal.getsignal(signal.SIGINT) is not handler._handle
    prog.check(None)  # handler gone: no longer interrupted


def test_second_signal_raises_at_once():
    with InterruptHandler(), pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)


def test_command_interrupted_after_its_last_safe_point_exits_1(tmp_path, capsys, monkeypatch):
    def handler(args):
        os.kill(os.getpid(), signal.SIGTERM)
        return 0

    import argparse

    monkeypatch.setattr(cli, "build_parser", lambda: _parser(argparse, handler))
    assert cli.main(["x"]) == 1
    assert "interrupted by SIGTERM, but the command had already finished" in capsys.readouterr().err


def _parser(argparse, handler):
    parser = argparse.ArgumentParser()
    parser.add_argument("--legacy-help", action="store_true")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("x").set_defaults(func=handler)
    return parser


def test_plain_progress_lines_every_5_percent():
    out = io.StringIO()
    lines = prog.LineProgress("predict", stream=out)
    for done in range(0, 101):
        lines(prog.Progress(done, 100, "tiles", metrics={"loss": 0.123456}))
    text = out.getvalue().splitlines()
    assert len(text) == 21 and text[0].startswith("predict: 0/100 tiles (0%)")
    assert text[-1].startswith("predict: 100/100 tiles (100%), ") and "tiles/s, ETA 0:00" in text[-1]
    assert text[-1].endswith("loss 0.1235")


def test_plain_progress_eta_is_the_time_limit_when_that_comes_first(monkeypatch):
    """A training whose time limit ends it long before its last step says so, not 57 minutes."""
    out = io.StringIO()
    lines = prog.LineProgress("train", stream=out, step=0.0001)
    now = iter([100.0, 110.0, 120.0, 130.0])
    monkeypatch.setattr(prog.time, "monotonic", lambda: next(now))
    lines(prog.Progress(0, 1000, "batches", eta_s=150.0))
    lines(prog.Progress(10, 1000, "batches", eta_s=140.0))   # rate: 990 left at 1/s, limit 2:20
    lines(prog.Progress(20, 1000, "batches", eta_s=None))    # no limit: the rate's ETA
    lines(prog.Progress(30, None, "batches", eta_s=30.0))    # no total: the limit alone
    text = out.getvalue().splitlines()
    assert text[1].endswith("1 batches/s, ETA 2:20 (time limit)")
    assert text[2].endswith("1 batches/s, ETA 16:20")
    assert text[3] == "train: 30 batches, ETA 0:30 (time limit)"  # (a new total: a new clock)


def test_tqdm_adapter_prints_lines_when_stderr_is_not_a_terminal(capsys):
    with prog.TqdmProgress("add") as bar:
        bar(prog.Progress(1, 2, "slabs", "writing"))
        bar(prog.Progress(2, 2, "slabs", "writing"))
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "add writing: 1/2 slabs (50%)" and len(err) == 2
    assert err[1].startswith("add writing: 2/2 slabs (100%), ")
