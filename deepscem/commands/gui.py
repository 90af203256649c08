"""``run.py gui [FILE ...]``: open the graphical interface with datasets or OME-Zarr images loaded."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "gui", help="open the graphical interface, optionally with files loaded",
        description="Open the graphical interface (as run.py without arguments does) and load "
                    "FILE...: dataset or prediction files (.hdf5), or OME-Zarr images "
                    "(.ome.zarr folders, opened read-only for viewing and predicting).")
    p.add_argument("files", metavar="FILE", nargs="*",
                   help="datasets (.hdf5) or OME-Zarr images (.ome.zarr) to load")
    p.add_argument("--no-safe", action="store_true",
                   help="safe mode off (the number of labels is unlocked), as --gui-no-safe")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deepscem.cli import open_gui

    return open_gui(safe=not args.no_safe, files=list(args.files))
