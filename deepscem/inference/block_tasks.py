"""What runs a block of a prediction job, in this process or on a cluster worker.

A worker keeps one :class:`~deepscem.inference.predictor.Predictor` (the model is loaded once,
by the worker plugin of :mod:`deepscem.inference.distributed`, or at the first block) and one
open reader of the input per process; :func:`run_block` predicts one block from the job alone
and writes it into the work store.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from deepscem import progress as prog
from deepscem.config import PredictConfig
from deepscem.dataset import normalization, volumes
from deepscem.inference import prediction_store as store
from deepscem.inference.blocks import Block, predict_block

_PREDICTORS: dict[tuple, Any] = {}  # per process: (model file, its stamp, config) -> Predictor
_SOURCES: dict[str, Any] = {}       # per process: input spec -> open VolumeSource


def cached_predictor(model_path: str, config: PredictConfig) -> Any:
    """The process's :class:`Predictor` for this model and config, loaded on first use (a
    cluster worker loads it once, in its plugin, and reuses it for every block).

    The file is identified by its resolved path, size and modification time, so a model
    retrained or replaced under the same name is loaded again; only the newest predictor is
    kept, so a long-lived process (the GUI, a test run) does not hold every model it ran."""
    path = Path(model_path)
    try:
        stat = path.stat()
        stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = None  # load_model says what is wrong with the path
    key = (str(path.resolve()), stamp, repr(config))
    if key not in _PREDICTORS:
        from deepscem.inference.predictor import Predictor
        from deepscem.models.bioimageio import is_package, load_package
        from deepscem.models.storage import load_model

        if is_package(path):  # its forward runs the package's own pre- and postprocessing
            forward, info = load_package(path, engine=config.engine)
            predictor = Predictor(None, info, config, forward=forward)
        else:
            model, info = load_model(model_path)
            predictor = Predictor(model, info, config)
        _PREDICTORS.clear()
        _PREDICTORS[key] = predictor
        predictor.info = info  # label names for the outputs
    return _PREDICTORS[key]


def _source(spec: str, run_id: str = "") -> Any:
    """The process's open reader of ``spec`` for run ``run_id`` (one run's at a time)."""
    key = f"{spec}#{run_id}"
    if key not in _SOURCES:
        for old in _SOURCES.values():
            old.close()
        _SOURCES.clear()
        _SOURCES[key] = volumes.open_volume(spec)
    return _SOURCES[key]


def close_sources() -> None:
    """Close the readers this process opened for blocks (after an in-process run: the input
    file must not stay open, e.g. for a later command of the same process that writes it)."""
    for source in _SOURCES.values():
        source.close()
    _SOURCES.clear()


def job_config(job: dict[str, Any]) -> PredictConfig:
    values = dict(job["config"])
    if values.get("patch") is not None:
        values["patch"] = tuple(values["patch"])
    return PredictConfig(**values)


def job_blocks(job: dict[str, Any]) -> list[Block]:
    return [Block(i, tuple(slice(a, b) for a, b in zip(c[0::2], c[1::2])))  # type: ignore
            for i, c in enumerate(job["blocks"])]


def task_job(job: dict[str, Any]) -> dict[str, Any]:
    """``job`` without its block list: what every block task carries (a few hundred bytes)."""
    return {k: v for k, v in job.items() if k != "blocks"}


def run_block(job: dict[str, Any], block: Block, *,
              cancel: prog.CancelToken | None = None) -> int:
    """Predict ``block`` of ``job`` (see :func:`task_job`) and write it (image copy and
    outputs) into the work store; returns its voxel count. Safe to run again (a retry
    rewrites the same values)."""
    predictor = cached_predictor(job["model"], job_config(job))
    if job.get("package_stats") is not None:  # measured once for the whole volume: plan_job
        predictor.package_forward.stats = dict(job["package_stats"])
    source = _source(job["input"], job["run_id"])
    value_range = tuple(job["value_range"])
    index, core = block.index, block.core
    grid = predictor.grid(tuple(job["shape"]))

    def read(region):
        return normalization.scale(source.read_region(region), *value_range)

    out = predict_block(predictor, read, grid, core, cancel=cancel)
    store.write_block(Path(job["store"]), job, index, core, source.read_region(core), out)
    return int(np.prod(out.shape[:3]))


class BlockMeter:
    """Reports blocks done of ``total`` with the throughput (Mvox/s) since the start."""

    def __init__(self, total: int, done: int, progress) -> None:
        self.total, self.done, self.progress = total, done, progress
        self.voxels, self.start = 0, time.monotonic()
        prog.emit(progress, done, total, "blocks", "predict")

    def add(self, voxels: int) -> None:
        self.done += 1
        self.voxels += voxels
        rate = self.voxels / max(1e-9, time.monotonic() - self.start) / 1e6
        prog.emit(self.progress, self.done, self.total, "blocks", "predict",
                  **{"Mvox/s": round(rate, 2)})
