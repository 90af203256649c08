"""``run.py predict MODEL DATASET OUT_DS``: segment every sample of a dataset with a model.

Keras is imported inside the handler only, after the arguments and paths are checked, so
``--help`` and mistakes in the command line answer at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deepscem.errors import DatasetError, ModelError
from deepscem.outputs import check_output

DEFAULT_OVERLAP = 0.25  # mirrors deepscem.config.PredictConfig (not imported: keep --help light)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict", help="segment every sample of a dataset with a model (writes a new dataset)",
        description="Predict: apply MODEL to every sample image of DATASET and write OUT_DS, a "
                    "prediction dataset with the same sample names (image + prediction_0000... "
                    "one per model output). Volumes of any size are cut in overlapping tiles, "
                    "blended smoothly, and written slab by slab; a 2D model works slice by slice.")
    parser.add_argument("model", metavar="MODEL", help="model file (.keras or .h5, including the "
                        "original DeepSCEM's models)")
    parser.add_argument("dataset", metavar="DATASET", help="dataset file (.hdf5) whose sample "
                        "images are segmented; labels are not needed")
    parser.add_argument("out", metavar="OUT_DS", help="prediction dataset file to write (.hdf5)")
    parser.add_argument("--patch", nargs=3, type=int, metavar=("Z", "Y", "X"),
                        help="tile size used for prediction, as large as memory allows (default: "
                             "512x512 slices for 2D models, 32x256x256 for 3D, at least twice the "
                             "training patch; Z is ignored for 2D models). Sizes are rounded up to "
                             "what the network needs and never exceed the volume")
    parser.add_argument("--overlap", nargs="?", type=float, const=DEFAULT_OVERLAP,
                        default=DEFAULT_OVERLAP, metavar="F",
                        help="fraction of a tile shared with its neighbour, blended smoothly "
                             f"(given alone: {DEFAULT_OVERLAP}; default {DEFAULT_OVERLAP})")
    parser.add_argument("--no-overlap", dest="overlap", action="store_const", const=0.0,
                        help="tiles touch without overlap (fastest; seams may show)")
    parser.add_argument("--threshold", type=float, metavar="T",
                        help="write binary masks (uint8 0/1: output > T) instead of float "
                             "probabilities")
    parser.add_argument("--min-size", type=int, default=0, metavar="N",
                        help="with --threshold: remove connected objects of fewer than N voxels "
                             "(specks; exact and out of core, see docs/prediction.md; default: "
                             "keep all)")
    parser.add_argument("--z-smooth", type=float, default=0.0, metavar="SIGMA",
                        help="smooth the outputs along Z with a Gaussian of SIGMA slices before "
                             "the threshold, so slices a 2D model predicted one by one agree with "
                             "their neighbours; keep it well below the Z extent of the smallest "
                             "object (default: off)")
    parser.add_argument("--batch-size", type=int, default=4, metavar="B",
                        help="tiles per forward pass (default %(default)s)")
    parser.add_argument("--tta", action="store_true",
                        help="test-time augmentation: average the 8 flips/rotations of each tile "
                             "(8x slower, usually smoother)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT_DS if it exists")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model_path, dataset_path, out = Path(args.model), Path(args.dataset), Path(args.out)
    if not model_path.is_file():
        raise ModelError(f"model file {model_path} does not exist")
    if not dataset_path.is_file():
        raise DatasetError(f"dataset file {dataset_path} does not exist")
    check_output(out, inputs={"MODEL": model_path, "DATASET": dataset_path}, overwrite=args.overwrite,
                 what="prediction dataset OUT_DS", error=DatasetError)
    from deepscem.config import PredictConfig

    config = PredictConfig(patch=tuple(args.patch) if args.patch else None, overlap=args.overlap,
                           batch_size=args.batch_size, threshold=args.threshold, tta=args.tta,
                           min_size=args.min_size, z_smooth=args.z_smooth)
    from deepscem.dataset import Dataset

    Dataset.open(dataset_path).close()  # a bad dataset is reported before the model loads

    from deepscem.devices import describe_device
    from deepscem.inference.predictor import predict_dataset
    from deepscem.models.storage import load_model
    from deepscem.progress import TqdmProgress

    model, info = load_model(model_path)
    print(f"device: {describe_device()}")
    with TqdmProgress("predict") as bar:
        predict_dataset(model, info, dataset_path, out, config, overwrite=args.overwrite,
                        progress=bar)
    print(f"wrote {out}")
    return 0
