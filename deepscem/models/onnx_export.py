"""A Keras model as an ONNX file: Keras' own ``model.export(format="onnx")`` (tf2onnx under the
TensorFlow backend), free batch and spatial sizes, float32, opset 17; written atomically.
Used by ``model export --format onnx``, the bioimage.io package and the ONNX Runtime /
OpenVINO engines' cache."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from deepscem.errors import ModelError

ONNX_OPSET = 17
#: Conversions tried before a wrong one is reported (each is checked against Keras).
CONVERSION_TRIES = 3
#: Largest |ONNX Runtime - Keras| accepted on the probe tile (float32 kernels differ by ~1e-6).
PROBE_TOLERANCE = 1e-3


def export_onnx(model: Any, path: str | os.PathLike, *, opset: int = ONNX_OPSET) -> Path:
    """Write ``model`` (Keras, one input (B, [Z,] Y, X, channels)) as an ONNX file at ``path``,
    atomically. Batch and spatial sizes stay free. The file is checked against Keras on a
    probe tile before it is renamed into place (a wrong conversion is retried, then refused).
    ModelError when the conversion fails."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".onnx")
    os.close(fd)
    tmp = Path(name)
    try:
        import tensorflow as tf

        # Keras' exporter traces the model with a free-size signature; tf2onnx prints a lot.
        tf.get_logger().setLevel("ERROR")
        probe = _probe_input(model)
        expected = np.asarray(model.predict_on_batch(probe), np.float32)  # also: Keras exports
        problem = ""                                                       # only models that ran
        for _ in range(CONVERSION_TRIES):
            try:
                model.export(str(tmp), format="onnx", verbose=False, opset_version=opset)
            except Exception as err:  # noqa: BLE001  tf2onnx/TensorFlow raise many types
                reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
                raise ModelError(f"could not convert the model to ONNX: {reason}") from None
            problem = _mismatch(tmp, probe, expected)
            if not problem:
                break
        if problem:
            raise ModelError(f"the ONNX conversion of the model is wrong ({problem}) in "
                             f"{CONVERSION_TRIES} tries; use the keras engine or the .keras file")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _probe_input(model: Any) -> np.ndarray:
    """A small random input the model accepts: one tile of twice its size multiple per
    spatial axis, with its input channels (1, or 1 + 2c slices for a 2.5D model)."""
    from deepscem.models.introspection import tile_multiple

    shape = tuple(model.inputs[0].shape)
    m = 2 * tile_multiple(model)
    return np.random.default_rng(0).random((1,) + (m,) * (len(shape) - 2) + (int(shape[-1] or 1),),
                                           dtype=np.float32)


def _mismatch(path: Path, probe: np.ndarray, expected: np.ndarray) -> str:
    """Why the ONNX file at ``path`` does not compute what the Keras model does on ``probe``
    ("" when it does). tf2onnx, run many times in one long process, has been seen to drop the
    final Squeeze of a graph (a (1, B, Y, X, C) output for (B, Y, X, C)): shapes and values
    are checked with ONNX Runtime, or the graph's declared output rank without it."""
    if importlib.util.find_spec("onnxruntime") is None:
        import onnx

        dims = onnx.load(str(path)).graph.output[0].type.tensor_type.shape.dim
        return "" if len(dims) == expected.ndim else f"output rank {len(dims)}, not {expected.ndim}"
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = np.asarray(session.run(None, {session.get_inputs()[0].name: probe})[0], np.float32)
    if got.shape != expected.shape:
        return f"output shape {got.shape}, not {expected.shape}"
    diff = float(np.max(np.abs(got - expected))) if got.size else 0.0
    return "" if diff <= PROBE_TOLERANCE else f"outputs differ by {diff:.3g}"
