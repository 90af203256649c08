"""Inference engines: the function that turns a batch of tiles into model outputs.

The predictor only needs ``forward(x) -> y`` with x float32 (B, Y, X, 1) for a 2D model or
(B, Z, Y, X, 1) for a 3D one, and y float32 (B, Y, X, C) / (B, Z, Y, X, C). Three engines
provide it:

* ``keras``: ``model.predict_on_batch`` (TensorFlow kernels); the reference, used on GPUs;
* ``onnxruntime``: the model exported to ONNX (Keras' ``model.export(format="onnx")``, through
  tf2onnx) run by ONNX Runtime's CPU kernels;
* ``openvino``: the same ONNX file compiled by OpenVINO for the CPU. Its precision is
  ``float32`` (same results as Keras to ~1e-5) or ``bfloat16`` (OpenVINO's native choice on
  CPUs with bf16 instructions: about 2x faster, probabilities differ by up to a few 1e-2; see
  bench/README.md for the measured IoU on Lucchi++).

The ONNX file is converted once per model and cached in :func:`cache_folder` under the
SHA-256 of the model's architecture and weights: a retrained or edited model gets a new file,
an unchanged one (even re-saved or renamed) reuses the old one. Conversion writes a temporary
file, checks it against Keras on a probe tile (tf2onnx has been seen to drop a graph's last
Squeeze in a long process) and renames it, so neither a killed nor a wrong conversion leaves a
broken cache entry.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deepscem.errors import ConfigError, ModelError

Forward = Callable[[np.ndarray], np.ndarray]

ENGINES = ("keras", "onnxruntime", "openvino")
PRECISIONS = ("float32", "bfloat16")
#: Largest |probability difference| to Keras float32 each engine is tested against on a small
#: tiled volume (tests/inference/test_engines.py). bfloat16 keeps 8 bits of mantissa: a
#: probability near 0.5 moves by ~1e-2 through a deep network.
TOLERANCE = {("keras", "float32"): 0.0, ("onnxruntime", "float32"): 1e-4,
             ("openvino", "float32"): 1e-4, ("openvino", "bfloat16"): 0.1}
#: What ``engine="auto"`` runs on a CPU, chosen by bench/predict.py on a trained Lucchi++
#: model (the fastest engine whose test IoU stays within 0.002 of Keras float32).
CPU_DEFAULT = ("openvino", "bfloat16")


def cache_folder() -> Path:
    """Where converted models live: $DEEPSCEM_CACHE, else the user cache folder
    (~/.cache/deepscem on Linux) + ``/engines``."""
    root = os.environ.get("DEEPSCEM_CACHE")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("deepscem", appauthor=False)
    return Path(root) / "engines"


def installed(engine: str) -> bool:
    """True when the engine's package can be imported here."""
    module = {"keras": "keras", "onnxruntime": "onnxruntime", "openvino": "openvino"}[engine]
    return importlib.util.find_spec(module) is not None


def resolve(engine: str | None, precision: str | None = None, *,
            gpu: bool | None = None) -> tuple[str, str]:
    """The (engine, precision) to run for a request: ``auto``/None -> Keras on a GPU, else
    :data:`CPU_DEFAULT` when installed (Keras otherwise; its bfloat16 only on CPUs with bf16
    instructions). A precision not given -> float32 for an explicitly named engine."""
    engine = engine or "auto"
    if engine == "auto":
        if gpu is None:
            from deepscem.devices import has_gpu

            gpu = has_gpu()
        if gpu or not installed(CPU_DEFAULT[0]):
            engine, default_precision = "keras", "float32"
        else:
            engine, default_precision = CPU_DEFAULT
            if default_precision == "bfloat16" and not _cpu_has_bf16():
                default_precision = "float32"  # emulated bf16 would be slower, not faster
        precision = precision or default_precision
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}: choose one of auto, {', '.join(ENGINES)}")
    precision = precision or "float32"
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}: choose float32 or bfloat16")
    if precision == "bfloat16" and engine != "openvino":
        raise ConfigError(f"bfloat16 inference is offered by the openvino engine, not {engine}")
    if not installed(engine):
        raise ConfigError(f"the {engine} engine is not installed: pip install {engine} "
                          "(or choose --engine keras)")
    return engine, precision


def _cpu_has_bf16() -> bool:
    from deepscem.devices import _cpu_flags

    return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())


def make_forward(model: Any, engine: str = "keras", precision: str = "float32") -> Forward:
    """The forward function of ``model`` (a Keras model) on ``engine`` (see module doc)."""
    if engine == "keras":
        return KerasForward(model)
    onnx_path = cached_onnx(model)
    if engine == "onnxruntime":
        return OnnxRuntimeForward(onnx_path)
    if engine == "openvino":
        return OpenVinoForward(onnx_path, precision)
    raise ConfigError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")


class KerasForward:
    """``model.predict_on_batch`` (one compiled call per batch), float32 out."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_on_batch(x), dtype=np.float32)


class OnnxRuntimeForward:
    """An ONNX file run by ONNX Runtime on the CPU (all cores, graph optimisations on)."""

    def __init__(self, path: str | Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001  ORT raises its own Fail/InvalidGraph types
            raise ModelError(f"ONNX Runtime cannot load {Path(path).name}: "
                             f"{str(err).splitlines()[0][:200]}") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{Path(path).name} has {len(inputs)} inputs and {len(outputs)} "
                             "outputs; one of each is needed")
        self.input, self.output = inputs[0].name, outputs[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        return np.asarray(self.session.run([self.output], {self.input: x})[0], np.float32)


class OpenVinoForward:
    """An ONNX file compiled by OpenVINO for the CPU, once per input shape (tiles keep one
    shape, so this compiles once or twice per run: full batches and the last one)."""

    def __init__(self, path: str | Path, precision: str = "float32") -> None:
        import openvino as ov

        self.core = ov.Core()
        try:
            self.model = self.core.read_model(str(path))
        except Exception as err:  # noqa: BLE001  OpenVINO raises RuntimeError subtypes of its own
            raise ModelError(f"OpenVINO cannot read {Path(path).name}: "
                             f"{str(err).splitlines()[0][:200]}") from None
        if len(self.model.inputs) != 1 or len(self.model.outputs) != 1:
            raise ModelError(f"{Path(path).name} needs one input and one output for OpenVINO")
        self.config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bfloat16" else "f32",
                       # latency: all cores on one request; measured faster than throughput here
                       "PERFORMANCE_HINT": "LATENCY"}
        self._compiled: dict[tuple[int, ...], Any] = {}

    def _compiled_for(self, shape: tuple[int, ...]) -> Any:
        if shape not in self._compiled:
            if len(self._compiled) >= 4:  # a run uses 1-2 shapes; never grow without bound
                self._compiled.pop(next(iter(self._compiled)))
            model = self.model.clone()
            model.reshape({model.inputs[0]: list(shape)})
            self._compiled[shape] = self.core.compile_model(model, "CPU", self.config)
        return self._compiled[shape]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        compiled = self._compiled_for(tuple(x.shape))
        return np.asarray(compiled(x)[0], dtype=np.float32)


def fingerprint(model: Any) -> str:
    """SHA-256 (hex, 20 chars) of a Keras model's architecture and weights: what identifies a
    converted file in the cache (the model file's name and date do not matter)."""
    digest = hashlib.sha256(model.to_json().encode())
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()[:20]


def cached_onnx(model: Any, folder: str | Path | None = None) -> Path:
    """The ONNX export of ``model`` in the cache (made now if missing); see module doc."""
    folder = Path(folder) if folder else cache_folder()
    path = folder / f"{fingerprint(model)}.onnx"
    if not path.is_file():
        from deepscem.models.onnx_export import export_onnx

        folder.mkdir(parents=True, exist_ok=True)
        export_onnx(model, path)
    return path


def temporary_name(folder: Path, suffix: str) -> Path:
    """A unique, not yet existing file name in ``folder`` (for write-then-rename)."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=".partial-", suffix=suffix)
    os.close(fd)
    os.unlink(name)
    return Path(name)
