"""bioimage.io model packages as DeepSCEM models: ``predict`` (and the GUI) run a package whose
model has one image input (one channel, or a DeepSCEM 2.5D model's slice and neighbours) and
one output, with ONNX or Keras weights.

:func:`load_package` returns a :class:`PackageForward` (the predictor's forward function:
tiles (B, [Z,] Y, X, 1) -> (B, [Z,] Y, X, C)) and a :class:`PackageInfo`. The forward moves
DeepSCEM's channels-last tiles into the package's axis order, applies its declared
preprocessing, runs the weights, applies the postprocessing and moves the output back.

Statistics that preprocessing computes (``scale_range`` percentiles, ``zero_mean_unit_variance``
mean/std) are taken over the whole volume before it is tiled (never per tile, which would
change the contrast from tile to tile): :meth:`PackageForward.prepare`. They are invariant to a
linear rescaling of the grey values, so computing them on DeepSCEM's [0, 1] image equals
computing them on the raw one. Operations with fixed values on raw intensities
(``scale_linear`` or ``fixed_zero_mean_unit_variance`` before any normalisation) are refused:
DeepSCEM hands the model min-max normalised images.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepscem.errors import ModelError

RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")
WEIGHTS = ("onnx", "keras_v3", "keras_hdf5")
#: Voxels sampled (evenly strided) for volume statistics: exact for min/max-like percentiles
#: of real images to well under 1 % of the range, and bounded time on 100 GB volumes.
STAT_VOXELS = 4_000_000


@dataclass
class PackageInfo:
    """What the predictor needs to know about a package's model (ModelInfo's shape)."""

    name: str
    dimension: int
    outputs: int
    tile_multiple: int
    min_tile: int
    label_names: list[str] = field(default_factory=list)
    patch_size: tuple[int, int, int] | None = None
    unet: Any = None
    filters: int = 16
    context: int = 0  # a DeepSCEM 2.5D model: slices per side given as input channels


def require_bioimageio() -> None:
    """ModelError with the install command when bioimageio.spec is missing."""
    import importlib.util

    if importlib.util.find_spec("bioimageio") is None:
        raise ModelError("bioimage.io packages need bioimageio.spec and bioimageio.core: "
                         "pip install 'deepscem[share]' (or the pinned requirements.txt)")


def is_package(path: str | Path) -> bool:
    """True for a folder holding rdf.yaml/bioimageio.yaml or a .zip holding one."""
    path = Path(path)
    if path.is_dir():
        return any((path / n).is_file() for n in RDF_NAMES)
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return any(n in archive.namelist() for n in RDF_NAMES)
    return False


def load_description(path: str | Path) -> Any:
    """The package's v0.5 ModelDescr (0.4 packages are converted); ModelError otherwise."""
    require_bioimageio()
    from bioimageio.spec import InvalidDescr, load_model_description

    path = Path(path)
    source = path / next(n for n in RDF_NAMES if (path / n).is_file()) if path.is_dir() else path
    try:
        descr = load_model_description(source, format_version="latest", perform_io_checks=False)
    except Exception as err:  # noqa: BLE001  pydantic / yaml / zip errors: a bad package
        raise ModelError(f"{path.name} is not a valid bioimage.io model package: "
                         f"{str(err).splitlines()[0][:200]}") from None
    if isinstance(descr, InvalidDescr):
        first = next(iter(descr.validation_summary.errors), None)
        reason = f"{first.loc}: {first.msg}" if first else "it does not follow the spec"
        raise ModelError(f"{path.name} is not a valid bioimage.io model package ({reason[:200]})")
    return descr


def _axes(tensor: Any) -> list[tuple[str, str, Any]]:
    """[(kind, id, size)] of a tensor: kind batch/channel/space/other."""
    result = []
    for axis in tensor.axes:
        kind = getattr(axis, "type", "other")
        size = getattr(axis, "size", None)
        if kind == "channel":
            size = len(axis.channel_names)
        result.append((kind, str(axis.id), size))
    return result


def package_context(descr: Any) -> int:
    """Context slices per side of a 2.5D model exported by DeepSCEM (its input channels are
    the slice and its neighbours, said in the package's ``config.deepscem``); 0 otherwise."""
    own = getattr(getattr(descr, "config", None), "deepscem", None)
    unet = ((own or {}).get("model_info") or {}).get("unet") if isinstance(own, dict) else None
    try:
        return max(0, int((unet or {}).get("context") or 0))
    except (TypeError, ValueError):
        return 0


def _check_io(descr: Any, name: str) -> tuple[list, list, int, int, int]:
    """(input axes, output axes, dimension, tile multiple, minimum tile); ModelError for what
    DeepSCEM cannot run."""
    if len(descr.inputs) != 1 or len(descr.outputs) != 1:
        raise ModelError(f"{name} has {len(descr.inputs)} inputs and {len(descr.outputs)} outputs; "
                         "DeepSCEM runs models with one image input and one output")
    axes_in, axes_out = _axes(descr.inputs[0]), _axes(descr.outputs[0])
    space = [a for a in axes_in if a[0] == "space"]
    other = [a for a in axes_in if a[0] not in ("space", "batch", "channel")]
    channels = [a[2] for a in axes_in if a[0] == "channel"]
    if other or len(space) not in (2, 3) or not {a[1] for a in space} <= {"z", "y", "x"}:
        raise ModelError(f"{name} takes axes {[a[1] for a in axes_in]}; DeepSCEM runs 2D (y, x) "
                         "or 3D (z, y, x) images with an optional batch and channel axis")
    context = package_context(descr)
    if channels and channels[0] != 1 + 2 * context:
        raise ModelError(f"{name} takes {channels[0]} input channels; DeepSCEM images are grey "
                         "(1 channel, or a slice and its neighbours for a DeepSCEM 2.5D model)")
    steps, mins = [], []
    for _, axis_id, size in space:
        step, low = getattr(size, "step", None), getattr(size, "min", None)
        if step is None:
            raise ModelError(f"{name} takes a fixed input size on axis {axis_id} ({size}); DeepSCEM "
                             "runs models that accept tiles of variable size")
        steps.append(int(step))
        mins.append(int(low))
    out_space = [a[1] for a in axes_out if a[0] == "space"]
    if sorted(out_space) != sorted(a[1] for a in space):
        raise ModelError(f"{name} outputs axes {[a[1] for a in axes_out]}, not a map of the input's "
                         "spatial axes")
    return axes_in, axes_out, len(space), int(np.lcm.reduce(steps)), max(mins)


def _weights_file(entry: Any, suffix: str) -> Path:
    """The weights file of a package entry as a local file (cached by content hash)."""
    from deepscem.inference.engines import cache_folder

    data = entry.get_reader().read()
    folder = cache_folder() / "packages"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:20]}{suffix}"
    if not path.is_file():
        from deepscem.inference.engines import temporary_name

        tmp = temporary_name(folder, suffix)
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def _inner_forward(descr: Any, name: str, engine: str) -> tuple[Any, tuple[str, str]]:
    """The forward function of the package's weights on ``engine``."""
    from deepscem.inference import engines

    weights = descr.weights
    formats = [w for w in WEIGHTS if getattr(weights, w, None) is not None]
    if not formats:
        present = [k for k in ("pytorch_state_dict", "torchscript", "tensorflow_saved_model_bundle",
                               "tensorflow_js") if getattr(weights, k, None) is not None]
        raise ModelError(f"{name} has {', '.join(present) or 'no'} weights; DeepSCEM runs "
                         "bioimage.io packages with onnx, keras_v3 or keras_hdf5 weights")
    if engine in ("auto", "onnxruntime", "openvino") and "onnx" in formats:
        chosen = "onnxruntime" if engine == "auto" else engine
        engines.resolve(chosen)  # installed?
        path = _weights_file(weights.onnx, ".onnx")
        if chosen == "openvino":
            return engines.OpenVinoForward(path), (chosen, "float32")
        return engines.OnnxRuntimeForward(path), (chosen, "float32")
    if engine not in ("auto", "keras") or not {"keras_v3", "keras_hdf5"} & set(formats):
        raise ModelError(f"{name} has {', '.join(formats)} weights: the {engine} engine cannot run "
                         "them (use --engine auto)")
    import keras

    from deepscem.models import legacy, losses  # noqa: F401  (custom objects of DeepSCEM models)

    entry = weights.keras_v3 or weights.keras_hdf5
    path = _weights_file(entry, ".keras" if weights.keras_v3 else ".h5")
    try:
        model = keras.saving.load_model(path, compile=False, custom_objects=legacy.custom_objects())
    except Exception as err:  # noqa: BLE001  Keras raises many types for a bad file
        raise ModelError(f"cannot load the Keras weights of {name}: "
                         f"{str(err).splitlines()[0][:200]}") from None
    return engines.KerasForward(model), ("keras", "float32")


def load_package(path: str | Path, engine: str = "auto") -> tuple[PackageForward, PackageInfo]:
    """(forward, info) for a bioimage.io package (zip or folder); ModelError when DeepSCEM
    cannot run it (two inputs, several input channels, fixed sizes, unknown weights...)."""
    from deepscem.models.bioimageio_ops import check_processing

    path = Path(path)
    descr = load_description(path)
    name = path.name
    axes_in, axes_out, dim, multiple, min_tile = _check_io(descr, name)
    pre = list(descr.inputs[0].preprocessing)
    post = list(descr.outputs[0].postprocessing)
    check_processing(pre, post, name)
    inner, used = _inner_forward(descr, name, engine)
    labels = [a for a in descr.outputs[0].axes if getattr(a, "type", "") == "channel"]
    names = [str(c) for c in labels[0].channel_names] if labels else ["output"]
    context = package_context(descr) if dim == 2 else 0
    info = PackageInfo(name=str(descr.name), dimension=dim, outputs=len(names),
                       tile_multiple=multiple, min_tile=min_tile, label_names=names,
                       context=context)
    return PackageForward(inner, axes_in, axes_out, pre, post, used), info


class PackageForward:
    """DeepSCEM tiles -> package axes -> preprocessing -> weights -> postprocessing -> back."""

    def __init__(self, inner: Any, axes_in: list, axes_out: list, pre: list, post: list,
                 engine: tuple[str, str]) -> None:
        self.inner, self.pre, self.post, self.engine = inner, pre, post, engine
        self.axes_in = [a[1] if a[0] not in ("batch", "channel") else a[0] for a in axes_in]
        self.axes_out = [a[1] if a[0] not in ("batch", "channel") else a[0] for a in axes_out]
        self.stats: dict[str, float] = {}

    def prepare(self, read: Any, shape_zyx: Any) -> None:
        """Volume statistics for the preprocessing (see module doc), from a strided sample."""
        from deepscem.models.bioimageio_ops import volume_statistics

        self.stats = volume_statistics(read, shape_zyx, self.pre, STAT_VOXELS)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from deepscem.models.bioimageio_ops import apply_ops

        ours = ["batch", *(["z", "y", "x"][5 - x.ndim:]), "channel"]
        data = apply_ops(x.astype(np.float32), self.pre, self.stats)
        data = _to_axes(data, ours, self.axes_in)
        if "batch" in self.axes_in:
            y = self.inner(data)
        else:  # the model takes one sample at a time
            y = np.stack([self.inner(d) for d in data])
        out_axes = self.axes_out if "batch" in self.axes_out else ["batch", *self.axes_out]
        y = _to_axes(np.asarray(y, np.float32), out_axes, ours)
        return apply_ops(y, self.post, {})


def _to_axes(data: np.ndarray, source: list[str], target: list[str]) -> np.ndarray:
    """Transpose ``data`` from axis names ``source`` to ``target``. A (size-1) axis the target
    lacks is dropped, one the source lacks is added; "batch" stays first when only the source
    has it (the caller then feeds samples one by one)."""
    source = list(source)
    for a in [a for a in source if a not in target and a != "batch"]:
        data = np.squeeze(data, axis=source.index(a))
        source.remove(a)
    for a in target:
        if a not in source:
            data = data[..., None]
            source.append(a)
    order = ["batch", *target] if "batch" in source and "batch" not in target else target
    return np.transpose(data, [source.index(a) for a in order])
