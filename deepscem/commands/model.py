"""``run.py model create|info|export``: make a new U-Net file, describe a model file, or
export it as a bioimage.io package / ONNX file.

Keras is imported inside the handlers only, so ``run.py model --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deepscem.errors import ModelError
from deepscem.outputs import check_output

DEFAULTS = {  # mirrors deepscem.config.UNetConfig (not imported here: keep --help light)
    "dim": 2, "block": "residual", "kernel_size": 3, "filters": 16, "blocks_per_level": 2,
    "normalization": "batchnorm", "depth": 4, "outputs": 1, "activation": "sigmoid", "name": "unet",
    "context": 0, "scale": 1,
}


def register(subparsers) -> None:
    """Long because it is one flat argparse declaration per action and option, read top to
    bottom like the --help it produces; split, the options of one command would scatter."""
    parser = subparsers.add_parser(
        "model", help="create a new U-Net model file, or show what a model file holds",
        description="Create a new (untrained) U-Net model, or describe a model file "
                    "(.keras or .h5, including models saved by the original DeepSCEM).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    parser.set_defaults(func=lambda args: parser.print_help())

    create = actions.add_parser(
        "create", help="create a new untrained U-Net and save it to OUT",
        description="Create a new untrained U-Net (the GUI's 'Create a new model') and save it. "
                    "Architecture: a model is a deep neural network (its layers and weights).")
    create.add_argument("out", metavar="OUT",
                        help="model file to write (.keras, or .h5 as the original DeepSCEM)")
    create.add_argument("--dim", type=int, choices=(2, 3), default=DEFAULTS["dim"],
                        help="2: works on 2D images / slices of a volume; 3: works on 3D volumes "
                             "(default %(default)s)")
    create.add_argument("--block", choices=("residual", "vgg"), default=DEFAULTS["block"],
                        help="convolution block type of each level (default %(default)s)")
    create.add_argument("--kernel-size", type=int, default=DEFAULTS["kernel_size"], metavar="K",
                        help="convolution kernel size per axis (default %(default)s)")
    create.add_argument("--filters", type=int, default=DEFAULTS["filters"], metavar="F",
                        help="filters of the first level; level l has F*2^l (default %(default)s)")
    create.add_argument("--blocks-per-level", type=int, default=DEFAULTS["blocks_per_level"],
                        metavar="B", help="convolution blocks per level (default %(default)s)")
    create.add_argument("--normalization", choices=("batchnorm", "instance", "none"),
                        default=DEFAULTS["normalization"],
                        help="normalisation after each convolution: batchnorm, instance (per patch "
                             "and channel) or none (default %(default)s)")
    create.add_argument("--depth", type=int, default=DEFAULTS["depth"], metavar="D",
                        help="number of poolings (the original's depth minus one); patches and "
                             "tiles must be multiples of 2^D (default %(default)s)")
    create.add_argument("--outputs", type=int, default=DEFAULTS["outputs"], metavar="N",
                        help="number of outputs = labels per sample of your dataset "
                             "(default %(default)s)")
    create.add_argument("--activation", choices=("sigmoid", "softmax", "tanh", "linear"),
                        default=DEFAULTS["activation"],
                        help="output activation: sigmoid for binary / multi-label masks, softmax for "
                             "mutually exclusive classes (2+ outputs), tanh/linear for distance "
                             "maps (default %(default)s)")
    create.add_argument("--name", default=DEFAULTS["name"], help="model name (default %(default)s)")
    create.add_argument("--context", default=None, metavar="N|auto",
                        help="2D models: N neighbouring slices on either side as extra input channels "
                             "(2.5D: 1 = 3 slices, 2 = 5); 'auto' chooses from the data given with "
                             "--data (its voxel size, or how alike neighbouring slices are) "
                             "(default: auto when --data is given, else "
                             f"{DEFAULTS['context']})")
    create.add_argument("--scale", type=int, choices=(1, 2, 4), default=DEFAULTS["scale"],
                        help="2D models: the network works at 1/S of the YX resolution (S x S block "
                             "means in, its output up-sampled back, inside the model), so a patch "
                             "of the same cost sees S^2 times the area; train with a patch S times "
                             "as large (the default patch follows) (default %(default)s)")
    create.add_argument("--data", metavar="DATASET",
                        help="the training dataset (.hdf5; several: commas), measured to choose "
                             "--context when it is 'auto' or not given")
    create.add_argument("--label-names", nargs="+", metavar="NAME",
                        help="one name per output (e.g. mito er), stored in the model file")
    create.add_argument("--boundary", action="store_true",
                        help="also predict each label's object boundaries (2 x N outputs; "
                             "trained from the labels, or instance_XXXX layers when present), so "
                             "'predict --instances' can split touching objects with a watershed")
    create.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    create.set_defaults(func=run_create)

    info = actions.add_parser(
        "info", help="show a model's architecture, options and metadata",
        description="Describe a model file: dimension, outputs (labels), parameter count, input "
                    "shape, U-Net options, training patch size, normalisation and history.")
    info.add_argument("model", metavar="MODEL", help="model file (.keras or .h5)")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(func=run_info)

    export = actions.add_parser(
        "export", help="write the model as a bioimage.io package or an ONNX file (to share it)",
        description="Export a model so other tools run it: a bioimage.io model package (.zip: "
                    "Keras + ONNX weights, test tensors, cover, model card; opens in Fiji/"
                    "deepImageJ, ilastik, napari, BiaPy) or a plain ONNX file.")
    export.add_argument("model", metavar="MODEL", help="model file (.keras or .h5)")
    export.add_argument("out", metavar="OUT", help="file to write (.zip for bioimageio, .onnx)")
    export.add_argument("--format", choices=("bioimageio", "onnx"), required=True,
                        help="bioimageio: model package for the bioimage.io ecosystem; onnx: the "
                             "network alone")
    export.add_argument("--sample", nargs=2, metavar=("DATASET", "SAMPLE"),
                        help="take the package's test image and cover from this sample (default: "
                             "a synthetic EM-like image)")
    export.add_argument("--author", action="append", metavar="NAME",
                        help="author of the model (repeat for several; default: your user name)")
    export.add_argument("--license", default="CC-BY-4.0", metavar="SPDX",
                        help="licence of the model, an SPDX id (default %(default)s)")
    export.add_argument("--description", default="", help="one-paragraph description for the "
                        "model card")
    export.add_argument("--score", action="append", metavar="NAME=VALUE",
                        help="a measured score for the model card, e.g. 'lucchi test IoU=0.81' "
                             "(repeat for several)")
    export.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    export.set_defaults(func=run_export)


def run_create(args: argparse.Namespace) -> int:
    out = check_output(args.out, overwrite=args.overwrite, what="model", error=ModelError)
    if out.suffix.lower() not in (".keras", ".h5", ".hdf5"):
        raise ModelError(f"cannot save a model as {out.name!r}: use a .keras or .h5 file name")
    from deepscem.config import UNetConfig
    from deepscem.models.storage import model_info_from, save_model
    from deepscem.models.unet import build_unet

    config = UNetConfig(dim=args.dim, block=args.block, kernel_size=args.kernel_size,
                        filters=args.filters, blocks_per_level=args.blocks_per_level,
                        normalization=args.normalization, depth=args.depth,
                        outputs=args.outputs * (2 if args.boundary else 1),
                        activation=args.activation, name=args.name,
                        context=_context(args.context, args.data, args.dim), scale=args.scale)
    model = build_unet(config)
    info = model_info_from(model, config)
    names = list(args.label_names or [f"label {i}" for i in range(args.outputs)])
    if len(names) != args.outputs:
        raise ModelError(f"--label-names gives {len(names)} names for "
                         f"{args.outputs} outputs; give one name per output")
    info.label_names = names
    if args.boundary:
        info.targets = "label+boundary"
        info.label_names = names + [f"{n} boundary" for n in names]
    save_model(model, out, info, overwrite=args.overwrite)
    print(f"created {out}: {config.dim}D U-Net, {model.count_params():,} parameters, "
          f"{config.outputs} output(s)")
    return 0


def _context(value: str | None, data: str | None, dim: int) -> int:
    """--context: a whole number, or 'auto' (measured on --data; prints why); not given: 'auto'
    when --data is given (the user did not choose, the data can), else the default."""
    from deepscem.errors import ConfigError

    if value is None:
        value = "auto" if data else str(DEFAULTS["context"])
    if value.strip().lower() != "auto":
        try:
            return int(value)
        except ValueError:
            raise ConfigError("--context takes a number of slices (0, 1, 2...) or 'auto', "
                              f"got {value!r}") from None
    if dim != 2:
        return 0
    if not data:
        raise ConfigError("--context auto measures the data: add --data TRAIN_DATASET")
    from deepscem.errors import DatasetError
    from deepscem.training.autoconfig import measured_context

    paths = [p for p in (s.strip() for s in data.split(",")) if p]
    for path in paths:
        if not Path(path).is_file():
            raise DatasetError(f"dataset file {path} does not exist")
    context, why = measured_context(paths)
    print(why)
    return context


def describe(path: str) -> dict:
    """The JSON ``model info`` prints (see ``storage.describe_model``), plus the path."""
    from deepscem.models.storage import describe_model, load_model

    model, info = load_model(path)
    return {"path": str(path), **describe_model(model, info)}


def _patch(data: dict) -> str:
    if data["patch_size"]:
        return "(Z, Y, X) = " + str(tuple(data["patch_size"]))
    return "unknown (not stored by the original)" if data["legacy"] else "not trained yet"


def _shape(shape: list) -> str:
    """(batch, Y, X, C) -> "(Y, X, 1)" with "any" for free sizes."""
    return "(" + ", ".join("any" if s is None else str(s) for s in shape[1:]) + ")"


def run_info(args: argparse.Namespace) -> int:
    data = describe(args.model)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    unet = data["unet"]
    lines = [
        f"model:        {data['path']} ({data['name']})",
        f"dimension:    {data['dimension']}D   input {_shape(data['input_shape'])} -> output "
        f"{_shape(data['output_shape'])}",
        f"outputs:      {data['outputs']} ({', '.join(data['label_names'])})",
        f"parameters:   {data['parameters']:,} ({data['trainable_parameters']:,} trainable)",
        f"tiles:        every axis a multiple of {data['tile_multiple']}",
        f"patch size:   {_patch(data)}",
        f"input range:  {data['normalization']}",
    ]
    if unet:
        lines.append("architecture: " + ", ".join(f"{k}={v}" for k, v in unet.items() if k != "name"))
    lines.append("written by:   " + (f"DeepSCEM {data['version']}" if data["version"]
                                     else "the original DeepSCEM (no metadata)"))
    if data["history"]:
        lines.append("history:      " + ", ".join(f"{k}={v}" for k, v in data["history"].items()
                                                  if not isinstance(v, (list, dict))))
        moved = [c for c in data["history"].get("calibration") or [] if c.get("applied")]
        if moved:
            lines.append("thresholds:   " + ", ".join(
                f"{c['label']} {c['threshold']:.2f} (validation IoU {c['iou_at_half']:.3f} at 0.5 "
                f"-> {c['iou']:.3f}), folded into the model: 0.5 means it" for c in moved))
    lines += [f"note:         {note}" for note in data["notes"]]
    print("\n".join(lines))
    return 0


def _scores(items: list[str] | None) -> dict[str, float]:
    scores = {}
    for item in items or []:
        name, _, value = item.rpartition("=")
        try:
            scores[name.strip()] = float(value)
        except ValueError:
            raise ModelError(f"--score {item!r}: write NAME=VALUE with a number, e.g. "
                             "'test IoU=0.81'") from None
        if not name.strip():
            raise ModelError(f"--score {item!r}: give a name before '='")
    return scores


def run_export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    suffix = ".zip" if args.format == "bioimageio" else ".onnx"
    if out.suffix.lower() != suffix:
        raise ModelError(f"a {args.format} export is a {suffix} file: name it {out.stem}{suffix}")
    check_output(out, inputs={"MODEL": args.model}, overwrite=args.overwrite,
                 what="export", error=ModelError)
    scores = _scores(args.score)
    image, training_data = None, ""
    from deepscem.models.storage import load_model

    model, info = load_model(args.model)
    history = info.history or {}
    training_data = ", ".join(history.get("train_datasets", []))
    if args.sample:
        from deepscem.dataset import Dataset

        with Dataset.open(args.sample[0]) as ds:
            sample = ds.sample(args.sample[1])
            z = sample.shape[0]
            from deepscem.dataset.context import model_context

            c = model_context(model) if info.dimension == 2 else 0  # 2.5D: the neighbours too
            keep = (slice(max(0, z // 2 - c), z // 2 + c + 1) if info.dimension == 2
                    else slice(0, min(z, 32)))
            image = sample.read_image((keep, slice(None), slice(None)))
    if args.format == "onnx":
        from deepscem.models.export import export_onnx

        export_onnx(model, out)
    else:
        from deepscem.models.export import ExportCard, export_bioimageio

        card = ExportCard(license=args.license, description=args.description,
                          training_data=training_data, scores=scores)
        if args.author:
            card.authors = list(args.author)
        export_bioimageio(model, info, out, image=image, card=card,
                          name=Path(args.model).stem)
    print(f"wrote {out}")
    return 0
