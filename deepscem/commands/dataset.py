"""``run.py dataset ...``: create and edit dataset files (one HDF5 file = a list of samples).

Words follow the original DeepSCEM's keyword list: an *image* is a 3D or 2D grayscale image (.tif, .tiff or
.npy), a *label* a 3D or 2D binary image, a *sample* an image / labels combination, a *dataset*
a collection (= a list) of samples. Heavy imports (h5py, NumPy) happen inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import sys

from deepscem.commands import dataset_annotation
from deepscem.commands.dataset_annotation import annotation_summary
from deepscem.errors import DatasetError

# Labels per sample: far above any real annotation, low enough to refuse a typo at once.
MAX_LABELS = 1000

IMAGE_HELP = ("the image: a 3D or 2D grayscale image (.tif, .tiff or .npy), or a folder of 2D "
              "slices, an OME-Zarr image, file.h5:/path or an MRC file (docs/big_volumes.md)")
LABEL_HELP = ("the labels, one per dataset label: each a 3D or 2D binary image (.tif, .tiff or .npy) "
              "of the image's size, holding 0 and one other value; \"\" or - for a blank label; "
              "none at all for a volume to predict or to paint (blank labels, nothing annotated)")
SLICES_HELP = ("Z indices of the slices that are labelled, e.g. 0,40,80 or ranges 0-9 (first slice "
               "= 0); the other slices are unknown, not background, and training ignores them")
MASK_HELP = ("a 3D or 2D binary image of the image's size: 1 (non-zero) where the labels are the "
             "truth, 0 where nothing was labelled")
FILE_HELP = "the dataset file (.hdf5): a collection (= a list) of samples"
SAMPLE_HELP = "the sample name (a sample is an image / labels combination)"


def register(subparsers) -> None:
    """Long because it is one flat argparse declaration per action and option, read top to
    bottom like the --help it produces; split, the options of one command would scatter."""
    group = subparsers.add_parser(
        "dataset", help="create and edit datasets (collections of samples)",
        description="Create and edit datasets: one .hdf5 file holding a list of samples, each "
                    "an image with its labels.")
    sub = group.add_subparsers(dest="action", metavar="ACTION")
    group.set_defaults(func=lambda args: _usage(group))

    p = sub.add_parser("create", help="create a new empty dataset",
                       description="Create a new empty dataset file.")
    p.add_argument("file", metavar="FILE", help=FILE_HELP)
    p.add_argument("name", metavar="NAME", help="the dataset name (e.g. I3)")
    p.add_argument("n_labels", metavar="N_LABELS", type=int,
                   help="number of labels every sample has (e.g. 2 for mitochondria and ER)")
    p.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    p.set_defaults(func=_create)

    p = sub.add_parser("add-sample", help="add a sample from an image and its labels",
                       description="Add a sample from an image and labels to an existing dataset. "
                                   "Nothing is written unless every file is valid.")
    p.add_argument("file", metavar="FILE", help=FILE_HELP)
    p.add_argument("sample", metavar="SAMPLE", help=SAMPLE_HELP)
    p.add_argument("image", metavar="IMAGE", help=IMAGE_HELP)
    p.add_argument("labels", metavar="LABEL", nargs="*", help=LABEL_HELP)
    p.add_argument("--voxel-size", nargs=3, type=float, metavar=("Z", "Y", "X"),
                   help="physical voxel size in nm, e.g. 50 5 5 (default: read from the TIFF's "
                        "ImageJ or OME metadata when it has one, else unknown)")
    p.add_argument("--instances", nargs="+", metavar="IDS",
                   help="label images holding object ids (0 = background, 1, 2, ... one per "
                        "object), one per label in order (\"\" or - to skip one); stored as "
                        "instance_XXXX references for measure and evaluate")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--labelled-slices", metavar="LIST", help=SLICES_HELP)
    which.add_argument("--annotated", metavar="MASK", help="only the voxels of MASK are labelled: "
                       + MASK_HELP)
    p.set_defaults(func=_add_sample)

    p = sub.add_parser("voxel-size", help="show or set a sample's voxel size (nm)",
                       description="Show a sample's voxel size (Z, Y, X in nm), or set it. Used "
                                   "by measure (volumes in nm³) and distance transforms.")
    p.add_argument("file", metavar="FILE", help=FILE_HELP)
    p.add_argument("sample", metavar="SAMPLE", help=SAMPLE_HELP + "; 'all' for every sample")
    p.add_argument("size", metavar="NM", nargs="*", type=float,
                   help="Z Y X in nm (e.g. 50 5 5); leave out to show it")
    p.add_argument("--clear", action="store_true", help="forget the voxel size (unknown)")
    p.set_defaults(func=dataset_annotation.voxel_size)

    p = sub.add_parser("annotated", help="say which slices or voxels of a sample are labelled",
                       description="Say which voxels of a sample are labelled (annotated); the rest "
                                   "is unknown, not background: training ignores it and evaluation "
                                   "does not score it. Without an option, print what is annotated.")
    p.add_argument("file", metavar="FILE", help=FILE_HELP)
    p.add_argument("sample", metavar="SAMPLE", help=SAMPLE_HELP)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--slices", metavar="LIST", help=SLICES_HELP)
    which.add_argument("--evenly", metavar="N", type=int,
                       help="N evenly spaced slices (the labels must hold those slices' truth)")
    which.add_argument("--mask", metavar="MASK", help=MASK_HELP)
    which.add_argument("--all", action="store_true", help="everything is labelled (the default)")
    which.add_argument("--none", action="store_true",
                       help="nothing is labelled (a volume to predict or to paint)")
    p.set_defaults(func=dataset_annotation.annotated)

    p = sub.add_parser("info", help="list a dataset's samples and layers",
                       description="List a dataset's samples, their shape (Z, Y, X) and layers.")
    p.add_argument("file", metavar="FILE", help=FILE_HELP)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_info)

    p = sub.add_parser("remove-sample", help="remove samples from a dataset",
                       description="Remove samples. The file does not shrink: use save-as for a "
                                   "compact copy.")
    p.add_argument("file", metavar="FILE", help=FILE_HELP)
    p.add_argument("samples", metavar="SAMPLE", nargs="+", help="the sample(s) to remove")
    p.set_defaults(func=_remove)

    p = sub.add_parser("rename-sample", aliases=["rename"], help="rename a sample",
                       description="Rename a sample.")
    p.add_argument("file", metavar="FILE", help=FILE_HELP)
    p.add_argument("old", metavar="SAMPLE", help="the sample's current name")
    p.add_argument("new", metavar="NEW_NAME", help="its new name")
    p.set_defaults(func=_rename)

    p = sub.add_parser("crop", help="crop a sample (all its layers)",
                       description="Crop a sample and all its layers to a box. Ranges are voxel "
                                   "indices START STOP, STOP excluded; an axis left out is kept "
                                   "whole. Without --new-name the sample is replaced.")
    p.add_argument("file", metavar="FILE", help=FILE_HELP)
    p.add_argument("sample", metavar="SAMPLE", help=SAMPLE_HELP)
    for axis in "zyx":
        p.add_argument(f"--{axis}", nargs=2, type=int, metavar=("START", "STOP"),
                       help=f"{axis.upper()} range to keep")
    p.add_argument("--new-name", metavar="NAME", help="add the crop as a new sample NAME instead")
    p.set_defaults(func=_crop)

    p = sub.add_parser("export", help="export a sample's layers as TIFF files or OME-Zarr",
                       description="Write a sample's layers as multi-page TIFFs FOLDER/SAMPLE_LAYER.tif "
                                   "(values as stored: labels 0/1), or with --format ome-zarr as "
                                   "one OME-Zarr image FOLDER/SAMPLE.ome.zarr: the image, and "
                                   "labels, thresholded predictions and instances as NGFF labels "
                                   "(napari, Fiji/MoBIE, neuroglancer open it).")
    p.add_argument("file", metavar="FILE", help=FILE_HELP)
    p.add_argument("sample", metavar="SAMPLE", help=SAMPLE_HELP + "; leave out (dataset export FILE "
                   "FOLDER) to export every sample")
    p.add_argument("folder", metavar="FOLDER", nargs="?", help="output folder (created if missing)")
    p.add_argument("--layers", nargs="+", metavar="LAYER",
                   help="layers to export (default: all; e.g. image label_0000)")
    p.add_argument("--format", choices=("tiff", "ome-zarr"), default="tiff",
                   help="tiff: one multi-page TIFF per layer (default); ome-zarr: one multiscale "
                        "OME-Zarr image with its masks as labels (float maps under predictions/)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=_export)

    p = sub.add_parser("save-as", help="save a compact copy of a dataset",
                       description="Save a compact copy of a dataset (space of removed samples "
                                   "is released).")
    p.add_argument("file", metavar="FILE", help=FILE_HELP)
    p.add_argument("out", metavar="OUT", help="the new dataset file (.hdf5)")
    p.add_argument("--original", action="store_true",
                   help="write exactly the original DeepSCEM's layout (float32 images in [0, 1], "
                        "contiguous, uncompressed) for colleagues still using it")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=_save_as)

    p = sub.add_parser("aliases", help="show or set the label names",
                       description="Show the label names, or set them (one per label).")
    p.add_argument("file", metavar="FILE", help=FILE_HELP)
    p.add_argument("names", metavar="NAME", nargs="*", help="one name per label, e.g. mito er")
    p.set_defaults(func=_aliases)

    p = sub.add_parser("distance-transform", help="add a label's signed distance transform",
                       description="Add layer label_XXXX_dt: the signed Euclidean distance to the "
                                   "label's boundary, tanh(d / SCALE): positive inside, negative "
                                   "outside, in (-1, 1).")
    p.add_argument("file", metavar="FILE", help=FILE_HELP)
    p.add_argument("sample", metavar="SAMPLE", help=SAMPLE_HELP + "; 'all' for every sample")
    p.add_argument("label", metavar="LABEL", type=int, help="label index (0 = first label)")
    p.add_argument("--scale", type=float, default=5.0, help="distance scale in voxels (default 5)")
    p.add_argument("--sampling", nargs=3, type=float, metavar=("Z", "Y", "X"),
                   help="voxel size, e.g. 4 1 1 for slices 4x thicker than pixels (default: the "
                        "sample's voxel size relative to X, or 1 1 1 when unknown)")
    p.add_argument("--per-slice", action="store_true",
                   help="2D distances slice by slice (little memory); default: whole 3D sample, "
                        "about 30 bytes per voxel")
    p.add_argument("--overwrite", action="store_true", help="replace an existing _dt layer")
    p.set_defaults(func=_distance_transform)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


# -- module-level functions (the original DeepSCEM's --create-dataset / --add-sample call these) -------------
def create(filename: str, name: str, n_labels: int, *, overwrite: bool = False) -> None:
    """Create an empty dataset ``filename`` named ``name`` with ``n_labels`` labels per sample."""
    from deepscem.dataset import Dataset

    if n_labels > MAX_LABELS:
        raise DatasetError(f"the number of labels must be at most {MAX_LABELS}, got {n_labels}")
    Dataset.create(filename, name, n_labels, overwrite=overwrite).close()


def add_sample(filename: str, name: str, image: str, labels, *, slices: str | None = None,
               mask: str | None = None, voxel_size=None, instances=()) -> None:
    """Add sample ``name`` (image path, label paths; "" or - = blank) with a progress bar;
    ``slices`` ("0,40,80", "0-9") or ``mask`` (path) say which voxels are labelled;
    ``voxel_size`` (Z, Y, X nm) and ``instances`` (object-id images) as Dataset.add_sample."""
    from deepscem.dataset import Dataset
    from deepscem.progress import TqdmProgress

    with Dataset.open(filename, "r+") as ds, TqdmProgress(f"{name}:") as bar:
        ds.add_sample(name, image, list(labels), annotated_slices=slices, annotated_mask=mask,
                      voxel_size=voxel_size, instances=list(instances or ()), progress=bar)


# -- handlers ----------------------------------------------------------------------------------
def _create(args) -> None:
    create(args.file, args.name, args.n_labels, overwrite=args.overwrite)


def _add_sample(args) -> None:
    add_sample(args.file, args.sample, args.image, args.labels, slices=args.labelled_slices,
               mask=args.annotated, voxel_size=args.voxel_size, instances=args.instances)


def _info(args) -> None:
    from deepscem.dataset import Dataset
    from deepscem.dataset.voxel_size import describe as describe_voxel

    with Dataset.open(args.file) as ds:
        info = describe(ds)
    if args.json:
        print(json.dumps(info, indent=2))
        return
    aliases = ", ".join(info["label_aliases"]) or "images only: for prediction and viewing"
    print(f"{info['path']}: dataset {info['name']!r}, {info['labels']} label(s) ({aliases}), "
          f"{len(info['samples'])} sample(s)")
    for s in info["samples"]:
        z, y, x = s["shape"]
        layers = ", ".join(f"{n} {d['dtype']}" for n, d in s["layers"].items())
        voxel = describe_voxel(s["voxel_size"])
        print(f"  {s['name']}: {z} x {y} x {x} (Z, Y, X), voxel {voxel}; {layers}; "
              f"{s['annotated']}")
        if s["missing_labels"]:
            print(f"  warning: sample {s['name']!r} has no {', '.join(s['missing_labels'])} "
                  f"(the dataset has {info['labels']} label(s)): it can be viewed and predicted, "
                  "not trained on or used as a reference")


def describe(ds) -> dict:
    """A JSON-ready summary: name, labels, aliases, and per sample shape, layers and the label
    layers it lacks (``missing_labels``)."""
    from deepscem.dataset.layers import label_name

    samples = []
    for s in ds:
        layers = {}
        for name in s.layer_names():
            data = s.layer(name)
            layers[name] = {"dtype": str(data.dtype), "chunks": list(data.chunks or []) or None,
                            "compression": data.compression}
        attrs = s.layer("image").attrs if "image" in s.group else {}
        stored = [float(attrs["norm_min"]), float(attrs["norm_max"])] if "norm_min" in attrs else None
        missing = [label_name(i) for i in range(ds.n_labels) if label_name(i) not in layers]
        fraction, words = annotation_summary(s)
        samples.append({"name": s.name, "shape": list(s.shape), "layers": layers,
                        "image_range": stored, "annotated_fraction": fraction,
                        "annotated": words, "missing_labels": missing,
                        "voxel_size": list(s.voxel_size) if s.voxel_size else None})
    return {"path": str(ds.path), "name": ds.name, "labels": ds.n_labels,
            "label_aliases": ds.label_aliases, "samples": samples}


def _remove(args) -> None:
    from deepscem.dataset import Dataset

    with Dataset.open(args.file, "r+", check_samples=False) as ds:
        names = list(dict.fromkeys(args.samples))  # `remove-sample ds s1 s1` removes s1 once
        for name in names:
            ds.sample(name)  # all names checked before any is removed
        for name in names:
            ds.remove_sample(name)


def _rename(args) -> None:
    from deepscem.dataset import Dataset

    with Dataset.open(args.file, "r+") as ds:
        ds.rename_sample(args.old, args.new)


def _crop(args) -> None:
    from deepscem.dataset import Dataset
    from deepscem.progress import TqdmProgress

    with Dataset.open(args.file, "r+") as ds, TqdmProgress(f"{args.sample}:") as bar:
        shape = ds.sample(args.sample).shape
        z, y, x = ((r if r else (0, n)) for r, n in zip((args.z, args.y, args.x), shape))
        ds.crop_sample(args.sample, z, y, x, new_name=args.new_name, progress=bar)


def _export(args) -> None:
    from deepscem.dataset import Dataset
    from deepscem.progress import TqdmProgress

    # `dataset export FILE FOLDER` (two values): every sample; else FILE SAMPLE FOLDER
    folder, one = (args.sample, None) if args.folder is None else (args.folder, args.sample)
    with Dataset.open(args.file) as ds:
        names = ds.sample_names() if one is None else [one]
        for name in names:
            with TqdmProgress(f"{name}:") as bar:
                if args.format == "ome-zarr":
                    from deepscem.dataset.ome_zarr_export import export_sample

                    paths = [export_sample(ds, name, folder, layers=args.layers,
                                           overwrite=args.overwrite, progress=bar)]
                else:
                    paths = ds.export_sample(name, folder, layers=args.layers,
                                             overwrite=args.overwrite, progress=bar)
            for path in paths:
                print(path)


def _save_as(args) -> None:
    from deepscem.dataset import save_as
    from deepscem.progress import TqdmProgress

    with TqdmProgress() as bar:
        save_as(args.file, args.out, original=args.original, overwrite=args.overwrite, progress=bar)


def _aliases(args) -> None:
    from deepscem.dataset import Dataset

    with Dataset.open(args.file, "r+" if args.names else "r") as ds:
        if args.names:
            ds.set_label_aliases(args.names)
        for i, alias in enumerate(ds.label_aliases):
            sys.stdout.write(f"{i}: {alias}\n")


def _distance_transform(args) -> None:
    from deepscem.dataset import Dataset
    from deepscem.progress import TqdmProgress

    with Dataset.open(args.file, "r+") as ds:
        names = ds.sample_names() if args.sample == "all" and "all" not in ds else [args.sample]
        for name in names:
            with TqdmProgress(f"{name}:") as bar:
                layer = ds.distance_transform(name, args.label, scale=args.scale,
                                              sampling=args.sampling, per_slice=args.per_slice,
                                              overwrite=args.overwrite, progress=bar)
            print(f"{name}/{layer}")
