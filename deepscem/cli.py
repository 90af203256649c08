"""Command line: ``run.py <command> ...`` subcommands plus the original DeepSCEM's legacy flags.

Two forms are accepted, both a contract that scripts rely on:

* the original DeepSCEM's flags, evaluated in its fixed order (create, then add, then train; with
  ``--gui-no-safe`` the GUI opens afterwards with safe mode off)::

    run.py --create-dataset I3_EXAMPLE.hdf5 I3 2 --add-sample I3_EXAMPLE.hdf5 i31 i3_1.tif a.tif b.tif

* subcommands (``run.py dataset create ...``, ``run.py train ...``), one module each in
  ``deepscem/commands/``.

No arguments opens the GUI. ``--help`` never imports TensorFlow: command modules import
heavy libraries inside their handlers only.

Exit codes: 0 success, 1 user error (one ``error: ...`` line on stderr; a traceback only
with ``--debug``), 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from deepscem import __version__
from deepscem.errors import DeepScemError

# Subcommand modules, in the order ``--help`` lists them. Each exposes
# ``register(subparsers)`` and sets ``func`` (args -> int | None) on its parsers.
COMMAND_MODULES = (
    "deepscem.commands.dataset",
    "deepscem.commands.model",
    "deepscem.commands.train",
    "deepscem.commands.predict",
    "deepscem.commands.evaluate",
    "deepscem.commands.instances",
    "deepscem.commands.measure",
    "deepscem.commands.demo",
    "deepscem.commands.gui",
)

LEGACY_FLAGS = ("--create-dataset", "--add-sample", "--train-model", "--gui-no-safe")

TRAIN_MODEL_FIELDS = (
    "model_in", "model_out", "train_dataset", "valid_dataset", "loss", "batch_size",
    "patch_z", "patch_y", "patch_x", "steps_per_epoch", "epochs", "validation_steps",
)


def _prog() -> str:
    """How the user called us: ``deepscem`` (the installed command) or ``run.py``."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "deepscem" if name.startswith("deepscem") else "run.py"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description=(
            "DeepSCEM: deep-learning segmentation of organelles in electron-microscopy volumes. "
            "Without arguments the graphical interface opens."
        ),
        epilog=(
            "Seed flag form (still supported): --create-dataset FILE NAME N_LABELS, "
            "--add-sample FILE NAME IMAGE [LABEL ...] (repeatable), --train-model with 12 values "
            "(see 'run.py --legacy-help'), --gui-no-safe."
        ),
    )
    parser.add_argument("--version", action="version", version=f"DeepSCEM {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--legacy-help", action="store_true",
                        help="explain the original DeepSCEM's flag form (--create-dataset, ...)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def build_legacy_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="The original DeepSCEM's flag form, run in its fixed order: create, add, train, then "
                    "(with --gui-no-safe) the GUI with safe mode off.",
    )
    parser.add_argument("--create-dataset", nargs=3, metavar=("FILENAME", "NAME", "N_LABELS"),
                        help="create a new empty dataset FILENAME named NAME with N_LABELS labels "
                             "per sample")
    parser.add_argument("--add-sample", nargs="+", action="append", default=[],
                        metavar="ARG",
                        help="FILENAME NAME IMAGE [LABEL1 LABEL2 ...]: add sample NAME from an "
                             "image and its labels (.tif, .tiff or .npy; \"\" for a blank label) "
                             "to an existing dataset; repeatable")
    parser.add_argument("--train-model", nargs=12, metavar=TRAIN_MODEL_FIELDS,
                        help="train MODEL_IN on TRAIN_DATASET, validate on VALID_DATASET, with "
                             "LOSS (Dice, CrossEntropy, MSE), BATCH_SIZE, patch Z Y X, "
                             "STEPS_PER_EPOCH, EPOCHS and VALIDATION_STEPS; keeps the best "
                             "checkpoint and writes MODEL_OUT and a CSV log beside it")
    parser.add_argument("--gui-no-safe", action="store_true",
                        help="open the GUI with safe mode off (number of labels unlocked)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return parser


def _is_legacy(argv: Sequence[str]) -> bool:
    return any(a in LEGACY_FLAGS for a in argv) and not (argv and argv[0] in _command_names())


def _command_names() -> set[str]:
    return {"dataset", "model", "train", "predict", "evaluate", "demo", "gui", "instances",
            "measure"}


def _print_our_warnings() -> None:
    """Show :class:`DeepScemWarning` as ``warning: ...`` lines, like errors, not as Python's
    ``file:line: UserWarning`` (other warnings keep Python's format)."""
    import warnings

    from deepscem.errors import DeepScemWarning

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DeepScemWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _print_our_warnings()
    # TensorFlow's C++ start-up banner (CPU instruction notes) is noise for users.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not argv:
        return open_gui(safe=True)
    # --debug may come anywhere (`run.py dataset info F --debug`): take it out before parsing.
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        if _is_legacy(argv):
            args = build_legacy_parser().parse_args(argv)
            return _interruptible(run_legacy, args, gui=args.gui_no_safe)
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.legacy_help:
            build_legacy_parser().print_help()
            return 0
        if args.command is None:
            parser.print_help()
            return 0
        return _interruptible(args.func, args, gui=args.command == "gui")
    except DeepScemError as err:
        if debug:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        _exit_now_if_hdf5_failed()
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Output piped into a reader that stopped early (`run.py dataset info F | head`):
        # not an error; point stdout at devnull so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:
        # What the user can fix on their side (permissions, read-only mounts, names too long,
        # a full disk) is one line, wherever it surfaced; anything else stays a bug's traceback.
        if err.errno not in _USER_ERRNOS:
            raise
        if debug:
            traceback.print_exc()
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{os.strerror(err.errno).lower()}", file=sys.stderr)
        _exit_now_if_hdf5_failed()
        return 1


_USER_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG, errno.ENOSPC,
                errno.EDQUOT, errno.EISDIR, errno.ENOTDIR}


def _exit_now_if_hdf5_failed() -> None:
    """After a failed HDF5 write (disk full) freeing h5py objects can crash in HDF5's close:
    leave at once with exit code 1; the dataset is as last flushed (edits write under hidden
    names first, see deepscem.dataset.pending)."""
    from deepscem.dataset.pending import write_failed

    if "h5py" in sys.modules and write_failed():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def _interruptible(func, args: argparse.Namespace, *, gui: bool) -> int:
    """Run a command handler with Ctrl+C/SIGTERM stopping it at a safe point (exit 1)."""
    if gui:  # the GUI handles its own quitting
        return int(func(args) or 0)
    from deepscem.errors import Interrupted
    from deepscem.interrupts import InterruptHandler

    with InterruptHandler() as handler:
        result = func(args)
    if handler.reason:  # the signal came after the last safe point: the command had finished
        raise Interrupted(f"{handler.reason}, but the command had already finished its work")
    return int(result or 0)


def run_legacy(args: argparse.Namespace) -> int:
    """The original DeepSCEM's flags, in its order: create, then every add, then train, then GUI."""
    from deepscem.commands import dataset as dataset_cmd

    if args.create_dataset:
        filename, name, n_labels = args.create_dataset
        dataset_cmd.create(filename, name, _legacy_int(n_labels, "--create-dataset N_LABELS"))
    for values in args.add_sample:
        if len(values) < 3:
            raise DeepScemError(
                "--add-sample needs at least FILENAME NAME IMAGE (then one LABEL per dataset label)")
        dataset_cmd.add_sample(values[0], values[1], values[2], values[3:])
    if args.train_model:
        values = dict(zip(TRAIN_MODEL_FIELDS, args.train_model))
        from deepscem.commands import train as train_cmd

        train_cmd.run_legacy(values)
    if args.gui_no_safe:
        return open_gui(safe=False)
    return 0


def _legacy_int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise DeepScemError(f"{what} must be a whole number, got {text!r}") from None


def gui_package() -> str:
    """Where the desktop application lives: ``ui`` in a checkout (``ui/`` beside ``deepscem/``),
    ``deepscem_ui`` when installed with pip (the same folder, installed under a name that cannot
    collide with other projects' top-level ``ui``)."""
    checkout = Path(__file__).resolve().parents[1] / "ui" / "app.py"
    return "ui" if checkout.is_file() else "deepscem_ui"


def open_gui(safe: bool = True, files: Sequence[str] = ()) -> int:
    """Open the desktop application (``ui/``) with ``files`` (datasets, OME-Zarr images) loaded;
    a plain message where it is not available."""
    import importlib

    package = gui_package()
    try:
        run_app = importlib.import_module(f"{package}.app").run_app
    except ModuleNotFoundError as err:
        if err.name and (err.name.startswith(package) or err.name.startswith("PyQt5")):
            print("error: the graphical interface is not available in this installation "
                  f"({err.name} missing); use the commands listed by 'run.py --help'",
                  file=sys.stderr)
            return 1
        raise
    return run_app(safe=safe, files=list(files)) if files else run_app(safe=safe)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
