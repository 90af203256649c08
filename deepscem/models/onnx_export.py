"""A Keras model as an ONNX file: Keras' own ``model.export(format="onnx")`` (tf2onnx under the
TensorFlow backend), free batch and spatial sizes, float32, opset 17; written atomically.
Used by ``model export --format onnx``, the bioimage.io package and the ONNX Runtime /
OpenVINO engines' cache."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from deepscem.errors import ModelError

ONNX_OPSET = 17


def export_onnx(model: Any, path: str | os.PathLike, *, opset: int = ONNX_OPSET) -> Path:
    """Write ``model`` (Keras, one input (B, [Z,] Y, X, 1)) as an ONNX file at ``path``,
    atomically. Batch and spatial sizes stay free. ModelError when the conversion fails."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".onnx")
    os.close(fd)
    tmp = Path(name)
    try:
        import tensorflow as tf

        # Keras' exporter traces the model with a free-size signature; tf2onnx prints a lot.
        tf.get_logger().setLevel("ERROR")
        _call_once(model)
        try:
            model.export(str(tmp), format="onnx", verbose=False, opset_version=opset)
        except Exception as err:  # noqa: BLE001  tf2onnx/TensorFlow raise many types
            reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
            raise ModelError(f"could not convert the model to ONNX: {reason}") from None
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _call_once(model: Any) -> None:
    """Keras exports only models that ran at least once (a new, untrained model has not)."""
    from deepscem.models.introspection import tile_multiple

    m = tile_multiple(model)
    rank = len(model.inputs[0].shape)
    model.predict_on_batch(np.zeros((1,) + (m,) * (rank - 2) + (1,), np.float32))
