"""``run.py instances DATASET``: object ids (``instance_XXXX``) from a prediction's masks.

Heavy imports happen inside the handler, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse


def add_instance_options(parser: argparse.ArgumentParser, *, prefix: str = "") -> None:
    """Options shared by ``instances`` and ``predict --instances``."""
    parser.add_argument(f"--{prefix}method", dest="instance_method",
                        choices=("auto", "components", "watershed"), default="auto",
                        help="how objects are separated: connected components of the mask, or a "
                             "seeded watershed on the boundary output of a model created with "
                             "--boundary (or a label_XXXX_dt distance map); auto = watershed when "
                             "such a layer is there (default)")
    parser.add_argument(f"--{prefix}seed-threshold", dest="seed_threshold", type=float,
                        default=0.5, metavar="T",
                        help="watershed seeds: mask voxels whose boundary probability is below T "
                             "(default %(default)s)")
    parser.add_argument(f"--{prefix}min-size", dest="instance_min_size", type=int, default=0,
                        metavar="N", help="drop objects of fewer than N voxels (default: keep all)")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "instances", help="label objects (instance ids) in a prediction or label dataset",
        description="Write instance_XXXX layers (uint32: 0 = background, 1..n one id per object) "
                    "for every sample of DATASET, from its prediction_XXXX masks (or label_XXXX "
                    "with --from label). Works block by block with bounded memory; objects "
                    "crossing blocks are stitched into one id.")
    p.add_argument("dataset", metavar="DATASET", help="dataset file (.hdf5), e.g. a prediction")
    p.add_argument("--threshold", type=float, default=0.5, metavar="T",
                   help="float predictions are foreground above T (default %(default)s)")
    p.add_argument("--from", dest="source", choices=("prediction", "label"),
                   default="prediction", help="which masks to split (default prediction)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing instance_XXXX layers (e.g. after proofreading, or "
                        "imported references); by default they are kept and it stops")
    add_instance_options(p)
    p.set_defaults(func=run)


def config_from(args: argparse.Namespace, threshold: float | None):
    from deepscem.postprocessing.instances import InstanceConfig

    return InstanceConfig(method=args.instance_method,
                          threshold=0.5 if threshold is None else float(threshold),
                          seed_threshold=args.seed_threshold,
                          min_size=args.instance_min_size)


def run(args: argparse.Namespace) -> int:
    from deepscem.postprocessing.instance_layers import run_on_file
    from deepscem.progress import TqdmProgress

    config = config_from(args, args.threshold)
    with TqdmProgress("instances") as bar:
        written = run_on_file(args.dataset, config, source=args.source,
                              overwrite=args.overwrite, progress=bar)
    for item in written:
        how = item.result.method + (f" on {item.boundary}" if item.boundary else "")
        print(f"{item.sample}/{item.layer}: {item.result.objects} objects ({how})")
    return 0
