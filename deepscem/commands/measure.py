"""``run.py measure DATASET``: one row per object in physical units, a summary per sample.

Heavy imports happen inside the handler, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deepscem.errors import ConfigError, DatasetError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "measure", help="measure objects: volume, surface, shape, position (CSV/JSON)",
        description="Measure every object of DATASET: the ids of its instance_XXXX layers (see "
                    "'instances'), or the connected objects of its labels/predictions. One row "
                    "per object: volume, surface area (marching cubes), sphericity, elongation, "
                    "centroid, bounding box, mean intensity, slices spanned, whether it touches "
                    "the volume border; in nm when the sample's voxel size is known (see "
                    "'dataset voxel-size'), else in voxels. Prints a summary per sample.")
    p.add_argument("dataset", metavar="DATASET", help="dataset file (.hdf5)")
    p.add_argument("--csv", metavar="FILE", help="write one row per object as CSV")
    p.add_argument("--json", metavar="FILE", help="write objects and summaries as JSON")
    p.add_argument("--threshold", type=float, default=0.5, metavar="T",
                   help="float predictions are foreground above T (default %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not Path(args.dataset).is_file():
        raise DatasetError(f"dataset file {args.dataset} does not exist")
    for path in (args.csv, args.json):
        if path and not Path(path).absolute().parent.is_dir():
            raise ConfigError(f"cannot write {path}: folder {Path(path).absolute().parent} does "
                              "not exist")
    from deepscem.evaluation.measurements import measure_dataset
    from deepscem.progress import TqdmProgress

    with TqdmProgress("measure") as bar:
        report = measure_dataset(args.dataset, threshold=args.threshold, progress=bar)
    print(report.format_summary())
    if args.csv:
        print(f"wrote {report.to_csv(args.csv)}")
    if args.json:
        print(f"wrote {report.to_json(args.json)}")
    return 0
