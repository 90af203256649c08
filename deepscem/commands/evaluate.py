"""``run.py evaluate REFERENCE_DS SEGMENTATION_DS``: score a segmentation against references.

NumPy/h5py are imported inside the handler only, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deepscem.errors import ConfigError, DatasetError
from deepscem.outputs import check_output, same_file


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score a segmentation dataset against a reference dataset (F1, IoU...)",
        description="Evaluate: compare SEGMENTATION_DS (e.g. the output of 'predict') with "
                    "REFERENCE_DS (hand labels), sample by sample (matched by name) and label by "
                    "label (label_* or prediction_* layers on either side). Prints F1 (Dice), "
                    "IoU (Jaccard), precision and recall per label per sample and pooled over "
                    "all samples, plus object figures (connected objects, object F1 at IoU >= "
                    "0.5), and instance scores (AP-50 / AP-75 as MitoEM, split / merged / "
                    "missed / false objects; JSON keys ap50, ap75). Both masks empty scores 1.0. "
                    "Samples or labels that cannot be compared are listed as warnings.")
    parser.add_argument("reference", metavar="REFERENCE_DS", help="dataset with the reference "
                        "(ground truth) labels")
    parser.add_argument("segmentation", metavar="SEGMENTATION_DS", help="dataset with the "
                        "segmentation to score (predictions or labels)")
    parser.add_argument("--threshold", type=float, default=0.5, metavar="T",
                        help="float predictions count as foreground above T (default "
                             "%(default)s; 0 reproduces the original's 'any non-zero' rule). "
                             "Binary masks are used as they are")
    parser.add_argument("--csv", metavar="FILE", help="also write the scores as CSV")
    parser.add_argument("--json", metavar="FILE", help="also write the scores as JSON")
    parser.add_argument("--no-objects", dest="objects", action="store_false",
                        help="skip object-level figures (they hold a whole sample in memory, "
                             "about 9 bytes per voxel)")
    parser.add_argument("--no-instances", dest="instances", action="store_false",
                        help="skip instance scores (AP at IoU 0.5 / 0.75 and matched / split / "
                             "merged / missed / false objects, from instance_XXXX layers or "
                             "connected objects)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the --csv / --json files if they exist")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for path in (args.reference, args.segmentation):
        if not Path(path).is_file():
            raise DatasetError(f"dataset file {path} does not exist")
    if not 0.0 <= args.threshold <= 1.0:
        raise ConfigError(f"--threshold must be between 0 and 1, got {args.threshold}")
    inputs = {"REFERENCE_DS": args.reference, "SEGMENTATION_DS": args.segmentation}
    for option, path in (("--csv", args.csv), ("--json", args.json)):
        if path:
            check_output(path, inputs=inputs, overwrite=args.overwrite, what=f"{option} file",
                         error=ConfigError)
    if args.csv and args.json and same_file(args.csv, args.json):
        raise ConfigError("--csv and --json name the same file: give two different names")
    from deepscem.evaluation import evaluate
    from deepscem.progress import TqdmProgress

    with TqdmProgress("evaluate") as bar:
        report = evaluate(args.reference, args.segmentation, threshold=args.threshold,
                          objects=args.objects, instances=args.instances, progress=bar)
    if not report.rows:  # nothing compared: a score table of nothing is not a result
        reasons = "; ".join(report.problems[:3]) or "the datasets hold no samples"
        raise DatasetError(f"nothing could be compared between {args.reference} and "
                           f"{args.segmentation}: {reasons}")
    print(report.format_table())
    if args.csv:
        print(f"wrote {report.to_csv(args.csv)}")
    if args.json:
        print(f"wrote {report.to_json(args.json)}")
    return 0
