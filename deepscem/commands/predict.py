"""``run.py predict MODEL INPUT OUTPUT``: segment a dataset's samples, or any volume, with a model.

INPUT is a DeepSCEM dataset (every sample is predicted into a prediction dataset, as the
original did) or one volume in any form :func:`deepscem.dataset.volumes.open_volume` reads;
OUTPUT's suffix picks the format (.hdf5, .ome.zarr, .tif). ``--cluster`` runs the blocks on
a Dask cluster, ``--resume`` finishes a killed run.

Keras is imported inside the handler only, after the arguments and paths are checked, so
``--help`` and mistakes in the command line answer at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deepscem.errors import ConfigError, DatasetError, ModelError
from deepscem.outputs import check_output

# as deepscem.dataset.volumes.SPEC_HELP (not imported: it loads h5py, keep --help light)
SPEC_HELP = ("a TIFF stack or .npy, a folder of 2D TIFF/PNG slices, an OME-Zarr image "
             "(image.ome.zarr, a scale level: image.ome.zarr/1), an HDF5 dataset (file.h5:/path; "
             "data.hdf5:SAMPLE for a DeepSCEM sample) or an MRC file")
DEFAULT_OVERLAP = 0.25  # mirrors deepscem.config.PredictConfig (not imported: keep --help light)


def register(subparsers) -> None:
    """Long because it is one flat argparse declaration per action and option, read top to
    bottom like the --help it produces; split, the options of one command would scatter."""
    parser = subparsers.add_parser(
        "predict", help="segment a dataset's samples or any volume with a model",
        description="Predict: apply MODEL to every sample image of DATASET and write OUT_DS, a "
                    "prediction dataset with the same sample names (image + prediction_0000... "
                    "one per model output); or to one volume INPUT in any form (TIFF stack, "
                    "folder of slices, OME-Zarr, file.h5:/path, MRC) into OUTPUT, whose suffix "
                    "picks the format: .hdf5 (a prediction dataset), .ome.zarr (OME-Zarr image "
                    "with the predictions as labels, multiscale) or .tif (BigTIFF). Volumes of any "
                    "size are cut in overlapping tiles, blended smoothly, and written block by "
                    "block; a 2D model works slice by slice. See docs/big_volumes.md.")
    parser.add_argument("model", metavar="MODEL", help="model file (.keras or .h5, including the "
                        "original DeepSCEM's models), or a bioimage.io model package (.zip or "
                        "folder with rdf.yaml: one image input, one output; dataset INPUT only)")
    parser.add_argument("dataset", metavar="INPUT", help="dataset file (.hdf5) whose sample "
                        "images are segmented (labels are not needed), or one volume: "
                        f"{SPEC_HELP}")
    parser.add_argument("out", metavar="OUTPUT", help="file to write: .hdf5 (prediction "
                        "dataset), .ome.zarr or .tif (volume input only)")
    parser.add_argument("--patch", nargs=3, type=int, metavar=("Z", "Y", "X"),
                        help="tile size used for prediction, as large as memory allows (default: "
                             "512x512 slices for 2D models, 32x256x256 for 3D, at least twice the "
                             "training patch; Z is ignored for 2D models). Sizes are rounded up to "
                             "what the network needs and never exceed the volume")
    parser.add_argument("--overlap", nargs="?", type=float, const=DEFAULT_OVERLAP,
                        default=None, metavar="F",
                        help="fraction of a tile shared with its neighbour, blended smoothly "
                             f"(given alone: {DEFAULT_OVERLAP}; default: tiles as large as memory "
                             "allows, seams overlapping by the network's border effect)")
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
    parser.add_argument("--tta-transforms", type=int, choices=(2, 4, 8), metavar="N",
                        help="test-time augmentation with N transforms (implies --tta): 2 = the "
                             "tile and its 180-degree rotation, 4 = its four rotations (most of "
                             "the 8's gain at half the time, see docs/prediction.md), 8 = the "
                             "rotations with and without a flip (default with --tta)")
    parser.add_argument("--engine", choices=("auto", "keras", "onnxruntime", "openvino"),
                        default="auto",
                        help="what runs the network: keras (TensorFlow), onnxruntime or openvino "
                             "(the model converted to ONNX once, cached); auto (default): keras on "
                             "a GPU, on a CPU the fastest engine whose accuracy matches keras "
                             "(see docs/cli.md)")
    parser.add_argument("--precision", choices=("float32", "bfloat16"),
                        help="arithmetic of the openvino engine (default: float32 when --engine "
                             "openvino is given; auto picks what was measured to keep accuracy)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help="run the blocks on a Dask cluster: local:N (N worker processes on "
                             "this machine, one per GPU if it has several), tcp://HOST:PORT (a "
                             "running 'dask scheduler') or slurm:JOBS (also pbs:, lsf:, sge:; "
                             "batch jobs set up in dask's jobqueue settings or --cluster-config). "
                             "Input, model and output must be on a file system the workers see")
    parser.add_argument("--cluster-config", metavar="FILE",
                        help="YAML file of dask settings, e.g. 'jobqueue: {slurm: {cores: 8, "
                             "memory: 32GB, walltime: \"04:00:00\"}}' (docs/big_volumes.md)")
    parser.add_argument("--resume", action="store_true",
                        help="finish a run that was killed: blocks already written are kept "
                             "(same input, model and options needed)")
    parser.add_argument("--range", nargs=2, type=float, metavar=("LO", "HI"), dest="value_range",
                        help="grey values mapped to 0 and 1 (default: the volume's min and max, "
                             "measured in one pass over it; e.g. 0 255 for 8-bit data)")
    parser.add_argument("--block", nargs=3, type=int, metavar=("Z", "Y", "X"),
                        help="block size, the unit of work and of --resume (default: about 16 M "
                             "voxels, whole slices when they fit)")
    # -- instances (deepscem.commands.instances) --
    parser.add_argument("--instances", action="store_true",
                        help="also write instance_XXXX layers: one id per object (connected "
                             "components, or a watershed with a model created with --boundary); "
                             ".hdf5 outputs")
    from deepscem.commands.instances import add_instance_options

    add_instance_options(parser, prefix="instance-")
    parser.set_defaults(func=run)


def instance_config(args: argparse.Namespace):
    """The InstanceConfig of ``--instances`` (None without it)."""
    if not args.instances:
        return None
    from deepscem.commands.instances import config_from

    return config_from(args, args.threshold)


def run(args: argparse.Namespace) -> int:
    model_path, out = Path(args.model), Path(args.out)
    if not model_path.exists():
        raise ModelError(f"model file {model_path} does not exist")
    if out.name.lower().endswith(".zarr"):  # a folder: check_output wants files
        if out.exists() and not args.overwrite:
            raise DatasetError(f"{out} already exists: choose another name, or replace it on "
                               "purpose (--overwrite on the command line)")
    else:
        from deepscem.dataset.volumes import spec_path

        inputs = {"MODEL": model_path, "INPUT": spec_path(args.dataset)}
        check_output(out, inputs=inputs, overwrite=args.overwrite, what="output OUTPUT",
                     error=DatasetError)
    if args.cluster:
        from deepscem.inference.distributed import parse_cluster

        parse_cluster(args.cluster)  # a typo is reported before the model loads
    from deepscem.config import PredictConfig

    if args.instances and out.suffix.lower() not in (".hdf5", ".h5"):
        raise ConfigError("--instances writes instance_XXXX layers into an .hdf5 output; predict "
                          "to .hdf5, or label the objects of this output with another tool")
    config = PredictConfig(patch=tuple(args.patch) if args.patch else None, overlap=args.overlap,
                           batch_size=args.batch_size, threshold=args.threshold,
                           tta=args.tta_transforms or (8 if args.tta else 0),
                           min_size=args.min_size, z_smooth=args.z_smooth, engine=args.engine,
                           precision=args.precision)
    spec = _volume_spec(args)
    if spec is None:
        return _predict_dataset(args, model_path, Path(args.dataset), out, config)
    from deepscem.dataset.volumes import open_volume

    open_volume(spec).close()  # a bad input is reported before the model loads
    from deepscem.devices import describe_device
    from deepscem.inference.volume_job import predict_to_file
    from deepscem.progress import TqdmProgress

    print(f"device: {describe_device()}" + (f"; cluster {args.cluster}" if args.cluster else ""))
    with TqdmProgress() as bar:  # stages: intensity range, predict, pyramid, write...
        summary = predict_to_file(model_path, spec, out, config, cluster=args.cluster,
                                  cluster_config=args.cluster_config, resume=args.resume,
                                  overwrite=args.overwrite, block=args.block, progress=bar,
                                  value_range=tuple(args.value_range) if args.value_range else None)
    if args.instances:
        from deepscem.postprocessing.instance_layers import run_on_file

        with TqdmProgress("instances") as bar:
            run_on_file(out, instance_config(args), overwrite=True, progress=bar)
    if summary["skipped"]:
        print(f"resumed: {summary['skipped']} of {summary['blocks']} blocks were already done")
    rate = summary["voxels"] / max(summary["seconds"], 1e-9) / 1e6
    print(f"{summary['run']} blocks in {summary['seconds']:.1f} s ({rate:.3g} Mvox/s)")
    print(f"wrote {out}")
    return 0


def _volume_spec(args: argparse.Namespace) -> str | None:
    """None when INPUT is a DeepSCEM dataset predicted as before (every sample into an .hdf5);
    else the volume spec to predict (a one-sample dataset counts as its sample)."""
    import h5py

    path = Path(args.dataset)
    is_dataset = path.is_file() and h5py.is_hdf5(path) and _has_labels_attr(path)
    if not is_dataset:
        return args.dataset
    plain = Path(args.out).suffix.lower() in (".hdf5", ".h5") and not (args.cluster or args.resume)
    if plain:
        return None
    from deepscem.dataset import Dataset

    with Dataset.open(path) as ds:
        names = ds.sample_names()
    if len(names) != 1:
        raise ConfigError(f"{path} holds {len(names)} samples: name one as {path}:SAMPLE for "
                          "this output or --cluster/--resume (samples: "
                          f"{', '.join(names[:6]) or 'none'})")
    return f"{path}:{names[0]}"


def _has_labels_attr(path: Path) -> bool:
    import h5py

    with h5py.File(path, "r") as f:
        return "labels" in f.attrs


def _predict_dataset(args, model_path: Path, dataset_path: Path, out: Path, config) -> int:
    from deepscem.dataset import Dataset

    Dataset.open(dataset_path).close()  # a bad dataset is reported before the model loads

    from deepscem.devices import describe_device
    from deepscem.inference.predictor import Predictor, predict_dataset
    from deepscem.models.bioimageio import is_package, load_package
    from deepscem.progress import TqdmProgress

    if is_package(model_path):
        forward, info = load_package(model_path, engine=args.engine)
        predictor = Predictor(None, info, config, forward=forward)
    else:
        from deepscem.models.storage import load_model

        model, info = load_model(model_path)
        predictor = Predictor(model, info, config)
    print(f"device: {describe_device()}; engine: {' '.join(predictor.engine)}")
    with TqdmProgress("predict") as bar:
        predict_dataset(predictor, info, dataset_path, out, config, overwrite=args.overwrite,
                        instances=instance_config(args), progress=bar)
    print(f"wrote {out}")
    return 0
