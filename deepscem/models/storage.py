"""Model files: ``.keras`` (native) and ``.h5`` (legacy Keras format, the original DeepSCEM's examples).

A DeepSCEM model file carries, next to the network, a :class:`ModelInfo` (JSON) with what
prediction needs: dimension, outputs and label names, training patch size, input
normalisation, the DeepSCEM version and the training history summary.

- ``.keras``: an extra zip member ``deepscem_metadata.json`` (Keras ignores members it
  does not know, so any Keras 3 still loads the file).
- ``.h5``: a root HDF5 attribute ``deepscem_metadata`` (JSON), written after Keras saved.

Saving writes a temporary file in the target folder and renames it over the target
(``os.replace`` is atomic on one file system), so a failed save never damages an existing
model. Loading checks the file is a segmentation model DeepSCEM can use (one grey input
channel, 2D or 3D) and raises :class:`ModelError` with a readable message otherwise.
Files written by the original DeepSCEM (no metadata) load too: see ``legacy``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from deepscem import __version__
from deepscem.errors import DeepScemError, ModelError
from deepscem.models.introspection import (  # noqa: F401  (ModelInfo/model_info_from re-exported)
    NORMALIZATION_MINMAX,
    ModelInfo,
    model_info_from,
    tile_multiple,
)
from deepscem.outputs import atomic_path, check_output

METADATA_MEMBER = "deepscem_metadata.json"   # inside a .keras zip
METADATA_ATTR = "deepscem_metadata"          # root attribute of a .h5 file
KERAS_SUFFIXES = (".keras",)
H5_SUFFIXES = (".h5", ".hdf5")
def describe_model(model, info: ModelInfo) -> dict[str, Any]:
    """A JSON-ready description of a model for ``model info`` and the GUI: name, dimension,
    outputs, parameters, trainable_parameters, input_shape/output_shape (None = any size),
    tile_multiple, then every ModelInfo field (label_names, patch_size, unet...)."""
    return {
        "name": model.name,
        "dimension": info.dimension,
        "outputs": info.outputs,
        "parameters": int(model.count_params()),
        "trainable_parameters": int(sum(math.prod(w.shape) for w in model.trainable_weights)),
        "input_shape": list(model.inputs[0].shape),
        "output_shape": list(model.outputs[0].shape),
        "tile_multiple": tile_multiple(model),
        **info.to_dict(),
        "notes": model_notes(info),
    }


def model_notes(info: ModelInfo) -> list[str]:
    """Warnings a user should see about a model (e.g. the original's 1-output softmax)."""
    notes = []
    if info.unet is not None and info.unet.activation == "softmax" and info.outputs == 1:
        notes.append("softmax over a single output is always 1.0, so this model cannot segment; "
                     "create a model with a sigmoid output")
    if info.legacy:
        notes.append("network from the original DeepSCEM: label names, patch size and "
                     "normalisation were not stored with it (defaults used)")
    return notes


def _json_default(obj: Any) -> Any:
    # NumPy scalars/arrays in a training history.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in KERAS_SUFFIXES:
        return "keras"
    if suffix in H5_SUFFIXES:
        return "h5"
    raise ModelError(f"cannot save a model as {path.name!r}: use a .keras or .h5 file name")


def save_model(model, path: str | os.PathLike, info: ModelInfo, *, overwrite: bool = True) -> Path:
    """Write ``model`` and ``info`` to ``path`` (.keras or .h5) atomically; returns the path.

    ModelError if ``path`` exists and ``overwrite`` is False, if the extension is neither,
    or if writing fails (the existing file, if any, is left untouched).
    """
    path = Path(path)
    kind = _format(path)
    check_output(path, overwrite=overwrite, what="model", error=ModelError)
    # The version is the writer's, whatever the info was loaded from.
    metadata = json.dumps({**info.to_dict(), "version": __version__}, default=_json_default)
    # The temporary name keeps the lower-cased extension: Keras checks it case-sensitively.
    try:
        with atomic_path(path) as tmp:
            _write(model, tmp, kind, metadata)
    except OSError as err:
        raise ModelError(f"could not write {path}: {err.strerror or err}") from err
    return path


def _write(model, tmp: Path, kind: str, metadata: str) -> None:
    with _quiet_h5_warning():
        model.save(tmp)
    if kind == "keras":
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(METADATA_MEMBER, metadata)
    else:
        import h5py

        with h5py.File(tmp, "a") as f:
            f.attrs[METADATA_ATTR] = metadata


class _DropLegacyNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "considered legacy" not in record.getMessage()


@contextlib.contextmanager
def _quiet_h5_warning():
    """Keras logs "HDF5 ... is considered legacy" on every .h5 save; .h5 is a deliberate
    user choice here (the original DeepSCEM's format), so the notice is only noise on the console."""
    logger, notice = logging.getLogger("absl"), _DropLegacyNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


def _read_metadata(path: Path, kind: str) -> tuple[dict | None, str | None]:
    """(metadata dict or None, Keras version that wrote the file or None)."""
    if kind == "keras":
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                raise ModelError(f"{path.name} is a zip file but not a Keras model")
            meta = json.loads(archive.read(METADATA_MEMBER)) if METADATA_MEMBER in names else None
            version = None
            if "metadata.json" in names:
                version = json.loads(archive.read("metadata.json")).get("keras_version")
        return meta, version
    import h5py

    with h5py.File(path, "r") as f:
        if "model_config" not in f.attrs:
            hint = (" (it looks like a DeepSCEM dataset: open it as a dataset)"
                    if "labels" in f.attrs else "")
            raise ModelError(f"{path.name} is an HDF5 file but not a Keras model{hint}")
        raw = f.attrs.get(METADATA_ATTR)
        version = f.attrs.get("keras_version")
    if isinstance(version, bytes):
        version = version.decode()
    if isinstance(raw, bytes):
        raw = raw.decode()
    return (json.loads(raw) if raw is not None else None), version


def load_model(path: str | os.PathLike):
    """Load a DeepSCEM model file: returns ``(keras.Model, ModelInfo)``, not compiled.

    Raises ModelError for a missing, corrupt or non-model file, and for a model DeepSCEM
    cannot use (not one grey input channel, not 2D/3D).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    kind = _detect_kind(path)
    try:
        meta, keras_version = _read_metadata(path, kind)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelError(f"{path.name}: its DeepSCEM metadata is damaged; the file cannot be "
                         "trusted, use a backup") from None
    except (OSError, zipfile.BadZipFile, KeyError) as err:
        raise ModelError(f"{path.name} is damaged or not a model file ({err})") from None

    import keras

    from deepscem.models import legacy, losses  # noqa: F401  (registers custom objects)

    try:
        with _keras_readable(path, kind) as readable:
            model = keras.saving.load_model(readable, compile=False,
                                            custom_objects=legacy.custom_objects())
    except Exception as err:  # noqa: BLE001  (Keras raises ValueError, KeyError, OSError, TypeError...)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"cannot load model {path.name}: {reason[:200]}") from None
    info = _check_model(model, path, meta, keras_version)
    if isinstance(model.input, (list, tuple)) or isinstance(model.output, (list, tuple)):
        # Keras 2 files declare their single input as a one-item list; Keras 3 then warns
        # on every call with a plain array. Same layers and weights, single-tensor signature.
        model = keras.Model(model.inputs[0], model.outputs[0], name=model.name)
    return model, info


@contextlib.contextmanager
def _keras_readable(path: Path, kind: str):
    """``path`` itself, or a link/copy whose suffix matches the content: Keras picks its
    reader from the (case-sensitive) suffix, so "MODEL.H5" or an .h5 renamed to .keras
    would otherwise fail."""
    wanted = (".keras",) if kind == "keras" else (".h5", ".hdf5")
    if path.name.endswith(wanted):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="deepscem-model-") as folder:
        alias = Path(folder) / ("model" + wanted[0])
        try:
            alias.symlink_to(path.resolve())
        except OSError:  # no symlinks (Windows without privileges): copy instead
            shutil.copyfile(path, alias)
        yield alias


def _detect_kind(path: Path) -> str:
    """By content, not extension: a renamed file still gets the right reader or message."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PK"):
        return "keras"
    if head == b"\x89HDF\r\n\x1a\n":
        return "h5"
    raise ModelError(f"{path.name} is not a model file (expected a .keras or .h5 Keras model); "
                     "if it should be one, it is damaged")


def _check_spatial(model, path: Path, in_shape: tuple) -> None:
    """The output map must have the input's spatial shape (tiles are blended voxel for voxel).

    Refused with one line: a fixed input size (DeepSCEM tiles volumes of any size), and
    networks whose output is smaller (valid convolutions) or larger (extra upsampling) than
    their input, found by a symbolic probe of 2 x 16 x the pooling factor per axis.
    """
    fixed = [int(s) for s in in_shape[1:-1] if s is not None]
    if fixed:
        raise ModelError(f"{path.name} accepts only inputs of exactly "
                         f"{' x '.join(str(s) for s in in_shape[1:-1])} voxels; DeepSCEM cuts "
                         "volumes into tiles of any size, so it needs a model built with an input "
                         "of unknown size (None) on every spatial axis")
    try:
        side = 2 * max(16, tile_multiple(model))
    except DeepScemError:
        side = 64
    probe = (1, *([side] * (len(in_shape) - 2)), 1)
    try:
        result = model.compute_output_shape(probe)
        if result and isinstance(result[0], (tuple, list)):  # [(1, 32, 32, 2)] from some files
            result = result[0]
        result = tuple(result)
        if len(result) != len(probe):
            raise ValueError(result)
    except Exception:  # noqa: BLE001 - a layer without shape inference: run the model once
        import numpy as np

        try:
            result = tuple(model(np.zeros(probe, np.float32), training=False).shape)
        except Exception as err:  # noqa: BLE001 - any failure means the model cannot tile
            raise ModelError(f"{path.name} cannot process a {' x '.join(map(str, probe[1:-1]))} "
                             f"tile ({str(err).splitlines()[0][:120]}); DeepSCEM needs a fully "
                             "convolutional model") from None
    if tuple(result[1:-1]) != probe[1:-1]:
        kind = "smaller" if any(int(o) < side for o in result[1:-1]) else "larger"
        raise ModelError(f"{path.name} turns a {' x '.join(map(str, probe[1:-1]))} input into a "
                         f"{' x '.join(map(str, result[1:-1]))} output ({kind} than its input: "
                         f"{'valid convolutions or pooling' if kind == 'smaller' else 'extra upsampling'}); "
                         "DeepSCEM needs an output of the input's size ('same' padding)")


def _check_model(model, path: Path, meta: dict | None, keras_version: str | None) -> ModelInfo:
    from deepscem.models.legacy import infer_unet_config

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"{path.name} has {len(model.inputs)} inputs and {len(model.outputs)} "
                         "outputs; a DeepSCEM model has one image input and one output")
    in_shape = tuple(model.inputs[0].shape)
    out_shape = tuple(model.outputs[0].shape)
    if len(in_shape) not in (4, 5):
        raise ModelError(f"{path.name} takes inputs of shape {in_shape[1:]}; a DeepSCEM model takes "
                         "2D (Y, X, 1) or 3D (Z, Y, X, 1) images")
    unet_meta = (meta or {}).get("unet")
    context = int(unet_meta.get("context") or 0) if isinstance(unet_meta, dict) else 0  # 2.5D
    if in_shape[-1] != 1 + 2 * context or (context and len(in_shape) != 4):
        raise ModelError(f"{path.name} expects {in_shape[-1]} input channels; DeepSCEM models take "
                         "one grey channel, or 1 + 2 x context slices for a 2.5D model (an RGB/"
                         "multi-channel model cannot be used)")
    if len(out_shape) != len(in_shape) or out_shape[-1] is None:
        raise ModelError(f"{path.name} outputs shape {out_shape[1:]}, not a segmentation map of the "
                         "input's shape")
    dimension, outputs = len(in_shape) - 2, int(out_shape[-1])
    _check_spatial(model, path, in_shape)
    if meta is None:
        legacy = bool(keras_version and str(keras_version).startswith("2."))
        return ModelInfo(dimension=dimension, outputs=outputs, unet=infer_unet_config(model),
                         version=None, legacy=legacy)
    try:
        info = ModelInfo.from_dict(meta)
    except (TypeError, ValueError, DeepScemError) as err:
        raise ModelError(f"{path.name}: its DeepSCEM metadata is invalid ({err})") from None
    if info.dimension != dimension or info.outputs != outputs:
        raise ModelError(f"{path.name}: metadata says {info.dimension}D with {info.outputs} outputs "
                         f"but the network is {dimension}D with {outputs}; the file is inconsistent")
    if len(info.label_names) != outputs:
        info.label_names = [f"label {i}" for i in range(outputs)]
    return info
