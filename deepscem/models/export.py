"""Models that travel: ONNX files and bioimage.io model packages.

* :func:`export_onnx`: Keras' own ``model.export(format="onnx")`` (tf2onnx under the
  TensorFlow backend), free batch and spatial sizes, float32, opset 17.
* :func:`export_bioimageio`: a bioimage.io model package (spec 0.5, a .zip) that
  bioimage.io's tools test and that Fiji/deepImageJ, ilastik and napari load. It holds the
  Keras 3 file (``keras_v3`` weights, the original) and its ONNX export (``onnx``, the format
  ilastik and deepImageJ run), test input/output tensors from a real sample (or a synthetic
  one), a cover image (the sample and its prediction as an overlay), the model's input
  normalisation written as the spec's ``scale_range`` over the sample (min-max: percentiles
  0 and 100; ``percentile LOW HIGH``: those percentiles, then ``clip`` to [0, 1]), and a
  model card (README.md) with the training data and scores when known. A 2.5D model takes
  its slice and the neighbours as input channels (``z_minus_1``, ``z``, ``z_plus_1``...).

The package is written to a temporary file and renamed, so a failed export never leaves a
half-written package under the requested name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from deepscem.errors import ModelError
from deepscem.models.model_card import ExportCard, card_text  # noqa: F401  (re-exported)
from deepscem.models.onnx_export import ONNX_OPSET, export_onnx  # noqa: F401  (re-exported)

#: Side of the test tile cut from the sample (rounded to the model's multiple): big enough to
#: show structure in the cover, small enough to keep the package and its test fast.
TEST_TILE = 256


def test_crop(image: np.ndarray, multiple: int, dim: int, context: int = 0) -> np.ndarray:
    """A central crop of a (Z, Y, X) image for the package's test input, as float32: (Y, X)
    for a 2D model (the middle slice), (Y, X, 1 + 2 * context) for a 2.5D one (the middle slice
    and its neighbours, mirrored at the ends as prediction does), (Z, Y, X) for 3D; every
    spatial axis a multiple of ``multiple`` (mirror-padded when the image is smaller), at most
    :data:`TEST_TILE`."""
    from deepscem.dataset.context import context_indices

    image = np.asarray(image, np.float32)
    if dim == 2:
        image = image[context_indices(image.shape[0] // 2, context, image.shape[0])]
    sizes = [max(multiple, min(TEST_TILE, s) // multiple * multiple) for s in image.shape[1:]]
    if dim == 3:
        sizes = [max(multiple, min(32, image.shape[0]) // multiple * multiple)] + sizes
    else:
        sizes = [image.shape[0]] + sizes
    starts = [max(0, (s - t) // 2) for s, t in zip(image.shape, sizes)]
    crop = image[tuple(slice(a, a + t) for a, t in zip(starts, sizes))]
    pad = [(0, t - c) for t, c in zip(sizes, crop.shape)]
    if any(p for _, p in pad):
        crop = np.pad(crop, pad, mode="reflect" if min(crop.shape[1:]) > 1 else "edge")
    if dim == 3:
        return crop
    return crop[0] if context == 0 else np.moveaxis(crop, 0, -1)


def normalise_like_package(crop: np.ndarray, normalization: str | None) -> np.ndarray:
    """``crop`` as the package's preprocessing hands it to the model: the model's
    normalisation (min-max, or percentiles LOW-HIGH, clipped to [0, 1]) computed over the
    crop, as bioimage.io's ``scale_range`` (+ ``clip``) does over the sample it is given."""
    from deepscem.dataset.normalization import parse, scale

    _, low, high = parse(normalization)
    lo, hi = (float(v) for v in np.percentile(np.asarray(crop, np.float32), [low, high]))
    return scale(crop, lo, hi)


def synthetic_image(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """A (Z, Y, X) float32 EM-like image in [0, 1] (synthetic mitochondria), for packages
    exported without a sample (the test tensors then only show that the model runs)."""
    from deepscem.dataset.synthetic import em_like_volume

    image, _ = em_like_volume(shape, seed=seed)
    image = image.astype(np.float32)
    lo, hi = float(image.min()), float(image.max())
    return (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)


def write_cover(path: Path, image: np.ndarray, prediction: np.ndarray) -> Path:
    """A 2:1 PNG: the (Y, X) image on the left, the image with the prediction (first
    output, > 0.5) in red on the right."""
    import matplotlib.image

    grey = np.clip(image, 0, 1)
    left = np.stack([grey] * 3, axis=-1)
    right = left.copy()
    mask = prediction > 0.5
    right[mask] = 0.5 * right[mask] + 0.5 * np.array([1.0, 0.1, 0.1])
    cover = np.concatenate([left, right], axis=1)
    matplotlib.image.imsave(path, (cover * 255).astype(np.uint8))
    return path


def export_bioimageio(model: Any, info: Any, out: str | os.PathLike, *,
                      image: np.ndarray | None = None, card: ExportCard | None = None,
                      name: str | None = None) -> Path:
    """Write a bioimage.io model package (.zip) of ``model`` to ``out`` (see module doc).

    image: a (Z, Y, X) sample image (raw or min-max scaled grey values: the package's
    normalisation is invariant to a linear scaling), the source of the test tensors and cover
    (its middle slice, and the neighbours for a 2.5D model); None -> a synthetic image (said
    in the card).
    """
    from deepscem.dataset.context import model_context
    from deepscem.models.bioimageio import require_bioimageio
    from deepscem.models.bioimageio_descr import build_description
    from deepscem.models.introspection import tile_multiple
    from deepscem.models.storage import save_model

    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise ModelError(f"a bioimage.io package is a .zip file: name it {out.stem}.zip")
    if not out.parent.is_dir():
        raise ModelError(f"folder {out.parent} does not exist; create it first")
    require_bioimageio()
    card = card or ExportCard()
    dim = int(info.dimension)
    multiple = int(tile_multiple(model, info))
    context = model_context(model) if dim == 2 else 0
    normalization = getattr(info, "normalization", None)
    synthetic = image is None
    if synthetic:
        side = max(TEST_TILE // 2, multiple)
        depth = max(multiple, 16) if dim == 3 else 1 + 2 * context
        image = synthetic_image((depth, side, side))
    crop = test_crop(image, multiple, dim, context)
    tile = normalise_like_package(crop, normalization)
    add_channel = (lambda a: a[None]) if context else (lambda a: a[None, ..., None])
    prediction = np.asarray(model.predict_on_batch(add_channel(tile)), np.float32)
    with tempfile.TemporaryDirectory(prefix="deepscem-export-") as folder:
        work = Path(folder)
        # the test input is the crop before normalisation: the package's own preprocessing
        # (scale_range [+ clip]) turns it into ``tile``, which made the test output
        np.save(work / "test_input.npy", add_channel(crop))
        np.save(work / "test_output.npy", prediction)
        middle = (tile[..., context] if context else tile) if dim == 2 else tile[tile.shape[0] // 2]
        pred_middle = prediction[0, ..., 0] if dim == 2 else prediction[0, tile.shape[0] // 2, ..., 0]
        write_cover(work / "cover.png", middle, pred_middle)
        save_model(model, work / "model.keras", info)
        export_onnx(model, work / "model.onnx")
        from bioimageio.spec import ValidationContext

        # offline: no HEAD requests to the DOIs and URLs of the card (bioimage.io's uploader
        # checks them); the files of the package are checked and hashed all the same
        with ValidationContext(perform_io_checks=False):
            descr = build_description(work, model, info, card, multiple=multiple,
                                      name=name or model.name, synthetic=synthetic,
                                      context=context)
            return _save_package(descr, out)


def _save_package(descr: Any, out: Path) -> Path:
    from bioimageio.spec import save_bioimageio_package

    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".zip")
    os.close(fd)
    tmp = Path(name)
    try:
        save_bioimageio_package(descr, output_path=tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
