"""The bioimage.io (spec 0.5) description of a DeepSCEM model, built with ``bioimageio.spec``.

Axes are DeepSCEM's own order, channels last: input (batch, [z,] y, x, channel=1), output
(batch, [z,] y, x, channel=outputs); a 2.5D model's input channels are the slice and its
neighbours (``z_minus_1``, ``z``, ``z_plus_1``...). Spatial input sizes are ``min = step =
2**depth`` (any multiple of the U-Net's multiple); output sizes refer to the input's.
Preprocessing is the model's normalisation as ``scale_range`` over the spatial axes (and the
context channels together): percentiles 0 and 100 for min-max, LOW and HIGH followed by
``clip`` to [0, 1] for ``percentile LOW HIGH`` (over the whole volume in DeepSCEM; over the
sample a consumer hands the model there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DEEPSCEM_URL = "https://github.com/Cyril-Meyer/DeepSCEM"
UNET_DOI = "10.1007/978-3-319-24574-4_28"  # Ronneberger et al., U-Net, MICCAI 2015


def _axes(dim: int, multiple: int, channels: list[str], *, output: bool) -> list[Any]:
    from bioimageio.spec.model import v0_5 as spec

    names = ["z", "y", "x"][3 - dim:]
    axes: list[Any] = [spec.BatchAxis()]
    for n in names:
        if output:
            size = spec.SizeReference(tensor_id=spec.TensorId("raw"), axis_id=spec.AxisId(n))
            axes.append(spec.SpaceOutputAxis(id=spec.AxisId(n), size=size))
        else:
            size = spec.ParameterizedSize(min=multiple, step=multiple)
            axes.append(spec.SpaceInputAxis(id=spec.AxisId(n), size=size))
    axes.append(spec.ChannelAxis(channel_names=[spec.Identifier(c) for c in channels]))
    return axes


def context_channels(context: int) -> list[str]:
    """Input channel names of a 2.5D model with ``context`` slices per side (["grey"] for 0)."""
    if context <= 0:
        return ["grey"]
    return ([f"z_minus_{k}" for k in range(context, 0, -1)] + ["z"]
            + [f"z_plus_{k}" for k in range(1, context + 1)])


def _input_tensor(work: Path, info: Any, dim: int, multiple: int, context: int) -> Any:
    """The "raw" input: grey image (or slice + neighbours), the model's normalisation as
    ``scale_range`` (+ ``clip`` for percentiles), the test input file in ``work``."""
    from bioimageio.spec.model import v0_5 as spec

    from deepscem.dataset.normalization import parse

    kind, low, high = parse(getattr(info, "normalization", None))
    spatial = [spec.AxisId(a) for a in ["z", "y", "x"][3 - dim:]]
    over = spatial + ([spec.AxisId("channel")] if context else [])
    preprocessing: list[Any] = [spec.ScaleRangeDescr(kwargs=spec.ScaleRangeKwargs(
        axes=over, min_percentile=float(low), max_percentile=float(high)))]
    if kind != "minmax":
        preprocessing.append(spec.ClipDescr(kwargs=spec.ClipKwargs(min=0.0, max=1.0)))
    what = ("grey EM image" if not context else
            f"grey EM slice and its {context} neighbour(s) on either side, as channels")
    return spec.InputTensorDescr(
        id=spec.TensorId("raw"), description=what,
        axes=_axes(dim, multiple, context_channels(context), output=False),
        test_tensor=spec.FileDescr(source=work / "test_input.npy"),
        data=spec.IntervalOrRatioDataDescr(type="float32"), preprocessing=preprocessing)


def _identifier(text: str, index: int) -> str:
    """A channel name the spec accepts (letters, digits, _ ; not starting with a digit)."""
    clean = "".join(c if c.isalnum() else "_" for c in text).strip("_") or f"label{index}"
    return clean if not clean[0].isdigit() else f"c{clean}"


def build_description(work: Path, model: Any, info: Any, card: Any, *, multiple: int,
                      name: str, synthetic: bool, context: int = 0) -> Any:
    """A ``bioimageio.spec`` v0.5 ModelDescr for the files in ``work`` (test_input.npy,
    test_output.npy, cover.png, model.keras, model.onnx); writes README.md there too."""
    import keras
    import tensorflow as tf
    from bioimageio.spec.model import v0_5 as spec

    from deepscem import __version__
    from deepscem.models.model_card import card_text
    from deepscem.models.onnx_export import ONNX_OPSET

    dim = int(info.dimension)
    (work / "README.md").write_text(card_text(info, card, name, synthetic), encoding="utf-8")
    labels = [_identifier(n, i) for i, n in enumerate(info.label_names)]
    inputs = [_input_tensor(work, info, dim, multiple, context)]
    from deepscem.models.introspection import output_activation

    activation = output_activation(model, info)
    value_range = (0.0, 1.0) if activation in ("sigmoid", "softmax") else (None, None)
    outputs = [spec.OutputTensorDescr(
        id=spec.TensorId("probabilities"), description=f"{activation or 'model'} output",
        axes=_axes(dim, multiple, labels, output=True),
        test_tensor=spec.FileDescr(source=work / "test_output.npy"),
        data=spec.IntervalOrRatioDataDescr(type="float32", range=value_range))]
    keras_weights = spec.KerasV3WeightsDescr(
        source=work / "model.keras", keras_version=spec.Version(keras.__version__),
        backend=("tensorflow", spec.Version(tf.__version__)))
    onnx_weights = spec.OnnxWeightsDescr(source=work / "model.onnx", opset_version=ONNX_OPSET,
                                         parent="keras_v3")
    cite = [spec.CiteEntry(text="Ronneberger et al., U-Net: Convolutional Networks for "
                                "Biomedical Image Segmentation, MICCAI 2015", doi=spec.Doi(UNET_DOI)),
            spec.CiteEntry(text="C. Meyer et al., DeepSCEM", url=spec.HttpUrl(DEEPSCEM_URL))]
    cite += [spec.CiteEntry(text=text, url=spec.HttpUrl(ref)) if ref.startswith("http")
             else spec.CiteEntry(text=text, doi=spec.Doi(ref)) for text, ref in card.cite]
    if len(name) < 5:  # the spec wants names of 5 characters or more
        name = f"DeepSCEM {name}"
    return spec.ModelDescr(
        name=name, description=(card.description or f"DeepSCEM {dim}D U-Net segmenting "
                                f"{', '.join(info.label_names)} in EM images")[:1024],
        authors=[spec.Author(name=a) for a in card.authors], cite=cite,
        license=spec.LicenseId(card.license),
        documentation=spec.FileDescr(source=work / "README.md"),
        covers=[spec.FileDescr(source=work / "cover.png")], git_repo=spec.HttpUrl(DEEPSCEM_URL),
        tags=["deepscem", "unet", f"{dim}d", "electron-microscopy", "segmentation",
              *[t.lower() for t in labels]],
        inputs=inputs, outputs=outputs,
        weights=spec.WeightsDescr(keras_v3=keras_weights, onnx=onnx_weights),
        config={"deepscem": {"version": __version__, "model_info": _json_info(info),
                             "training_data": card.training_data, "scores": card.scores}})


def _json_info(info: Any) -> dict:
    import json

    from deepscem.models.storage import _json_default

    return json.loads(json.dumps(info.to_dict(), default=_json_default))
