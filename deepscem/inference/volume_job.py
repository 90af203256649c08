"""Predict one volume of any form (:func:`deepscem.dataset.volumes.open_volume`) into an
``.ome.zarr``, ``.hdf5`` or ``.tif`` output, block by block, in this process or on a Dask
cluster, resumable.

The run is described by a *job* (a JSON-able dict saved in the work store, see
:mod:`~deepscem.inference.prediction_store`): input, model, options, the volume-wide
intensity range, the output chunks and the block plan.
:func:`~deepscem.inference.block_tasks.run_block` does one block from the job alone (it is
what a cluster worker runs); :func:`predict_to_file` plans the job, runs the blocks not done
yet, and turns the store into the output.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from deepscem import progress as prog
from deepscem.config import PredictConfig
from deepscem.dataset import volumes
from deepscem.errors import DatasetError
from deepscem.inference import prediction_store as store
from deepscem.inference.block_tasks import (
    BlockMeter,
    cached_predictor,
    close_sources,
    job_blocks,
    run_block,
    task_job,
)
from deepscem.inference.blocks import Block, output_chunks, plan_blocks

JOB_VERSION = 1
# What a --resume must find unchanged in the stored job for the finished blocks to be valid
# (the block plan itself is taken from the stored job: it may depend on the workers there were).
SAME_FOR_RESUME = ("version", "input", "model", "model_mtime", "config", "shape", "value_range")

def plan_job(predictor: Any, info: Any, model_path: Path, source: Any, spec: str, out: Path,
             value_range: tuple[float, float], *, block: tuple[int, int, int] | None = None,
             min_blocks: int = 1) -> dict[str, Any]:
    """The job dict for predicting ``source`` into ``out`` (see the module docstring)."""
    shape = tuple(int(s) for s in source.shape)
    grid = predictor.grid(shape)
    if block:
        chunks = tuple(max(1, min(int(b), c, s)) for b, c, s in
                       zip(block, output_chunks(shape, grid.tile_shape), shape))
        blocks = plan_blocks(shape, chunks, grid.tile_shape, block=block)
    else:
        chunks = output_chunks(shape, grid.tile_shape)
        blocks = plan_blocks(shape, chunks, grid.tile_shape, min_blocks=min_blocks)
    names = list(getattr(info, "label_names", None) or [])
    if len(names) != predictor.outputs:
        names = [f"label {i}" for i in range(predictor.outputs)]
    names = [_safe_name(n, i) for i, n in enumerate(names)]
    name = volumes.spec_name(spec)
    return {
        "version": JOB_VERSION, "input": spec, "model": str(model_path),
        "model_mtime": model_path.stat().st_mtime, "store": str(store.work_path(out)),
        "config": {k: (list(v) if isinstance(v, tuple) else v)
                   for k, v in dataclasses.asdict(predictor.config).items()},
        "threshold": predictor.config.threshold, "shape": list(shape), "chunks": list(chunks),
        "blocks": [[v for s in b.core for v in (s.start, s.stop)] for b in blocks],
        "value_range": [float(v) for v in value_range], "names": names,
        "name": name, "sample": name, "run_id": uuid.uuid4().hex,
        "targets": getattr(info, "targets", "label"),  # label+boundary: see export_formats
    }


def _safe_name(name: str, i: int) -> str:
    """A label name usable as a zarr group name (no '/', not hidden)."""
    text = str(name).replace("/", "_").strip().lstrip(".")
    return text or f"label {i}"


def predict_to_file(model_path: str | Path, spec: str, out: str | Path,
                    config: PredictConfig | None = None, *, cluster: str | None = None,
                    cluster_config: str | None = None, resume: bool = False,
                    overwrite: bool = False, value_range: tuple[float, float] | None = None,
                    block: tuple[int, int, int] | None = None,
                    progress: prog.ProgressCallback | None = None,
                    cancel: prog.CancelToken | None = None) -> dict[str, Any]:
    """Predict the volume ``spec`` with the model file ``model_path`` into ``out`` (format by
    suffix). ``cluster``: None (this process), ``local:N``, ``tcp://HOST:PORT``,
    ``slurm:JOBS`` (see :mod:`deepscem.inference.distributed`). ``resume``: keep the blocks a
    killed run finished. ``value_range``: the intensity range mapped to [0, 1] (default: the
    stored one, else measured in one pass). Returns a summary (blocks run, skipped, seconds).
    """
    out = Path(out)
    store.output_format(out)
    if out.exists() and not overwrite:
        raise DatasetError(f"{out} already exists: choose another output or add --overwrite")
    config = config or PredictConfig()
    model_path = Path(model_path).absolute()
    spec = volumes.absolute_spec(spec)
    source = volumes.open_volume(spec)
    try:
        return _predict_source(model_path, spec, out, config, source, cluster=cluster,
                               cluster_config=cluster_config, resume=resume,
                               value_range=value_range, block=block, progress=progress,
                               cancel=cancel)
    finally:
        source.close()
        close_sources()


def _predict_source(model_path: Path, spec: str, out: Path, config: PredictConfig, source: Any, *,
                    cluster, cluster_config, resume, value_range, block, progress,
                    cancel) -> dict[str, Any]:
    predictor = cached_predictor(str(model_path), config)
    info = predictor.info
    work = store.work_path(out)
    old = store.read_job(work) if resume else None
    with _maybe_cluster(cluster, cluster_config) as client:
        if value_range is None and old is not None:
            value_range = tuple(old["value_range"])
        if value_range is None:
            value_range = model_range(predictor.normalization, source)
        if value_range is None:
            value_range = _measure_range(client, source, spec, progress, cancel)
        workers = len(client.scheduler_info()["workers"]) if client is not None else 1
        job = plan_job(predictor, info, model_path, source, spec, out, value_range, block=block,
                       min_blocks=4 * workers if client is not None else 1)
        if old is not None and all(old.get(k) == job.get(k) for k in SAME_FOR_RESUME):
            if block is None or old["blocks"] == job["blocks"]:
                job = old
                done = store.done_blocks(work)
            else:
                raise DatasetError(f"{work} was cut in other blocks; resume without --block or "
                                   "with the one it was started with")
        else:
            if old is not None:
                raise DatasetError(f"{work} was made with another input, model or options; run "
                                   "again without --resume to start over")
            job["package_stats"] = package_statistics(predictor, source, value_range)
            store.create(work, job, job["names"], np.float32 if job["threshold"] is None
                         else np.uint8, source.dtype, source.voxel_size)
            done = set()
        todo = [b for b in job_blocks(job) if b.index not in done]
        if client is not None and todo:
            from deepscem.inference.distributed import prepare_workers

            prepare_workers(client, job)  # model loads: not counted in the throughput below
        start = time.monotonic()
        if client is None:
            _run_here(job, todo, len(job["blocks"]), progress, cancel)
        else:
            from deepscem.inference.distributed import run_blocks

            run_blocks(client, job, todo, len(job["blocks"]), progress=progress, cancel=cancel)
        seconds = time.monotonic() - start
    removed = store.finish(work, out, job, source.voxel_size, min_size=config.min_size,
                           progress=progress, cancel=cancel)
    voxels = sum(int(np.prod([b.stop - b.start for b in blk.core])) for blk in todo)
    return {"blocks": len(job["blocks"]), "run": len(todo), "skipped": len(done),
            "seconds": seconds, "voxels": voxels, "removed": removed}


def _run_here(job: dict, todo: list[Block], total: int, progress, cancel) -> None:
    meter = BlockMeter(total, total - len(todo), progress)
    slim = task_job(job)
    for blk in todo:
        prog.check(cancel)
        meter.add(run_block(slim, blk, cancel=cancel))


def package_statistics(predictor: Any, source: Any,
                       value_range: tuple[float, float]) -> dict[str, float] | None:
    """A bioimage.io package's preprocessing statistics (percentiles, mean / std) of the
    whole volume as the blocks will read it, measured once here so that every block and
    worker normalises alike; None for a DeepSCEM model (its range is ``value_range``)."""
    forward = predictor.package_forward
    if forward is None:
        return None
    from deepscem.dataset import normalization

    def read(region):
        return normalization.scale(source.read_region(region), *value_range)

    forward.prepare(read, tuple(int(s) for s in source.shape))
    return {k: float(v) for k, v in forward.stats.items()}


def model_range(method: str | None, source: Any) -> tuple[float, float] | None:
    """The grey-value range the model's recorded normalisation maps to [0, 1] on ``source``
    (as in training): a percentile model's percentiles of this volume; None for min/max."""
    from deepscem.dataset import normalization

    kind, low, high = normalization.parse(method)
    if kind == normalization.MINMAX:
        return None
    lo, hi = normalization.percentile_range(_SourceAsSample(source), low, high)
    return (lo, hi) if hi > lo else None


class _SourceAsSample:
    """A volume source seen as a sample with an ``image`` layer, for percentile_range."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.shape, self.dtype = tuple(source.shape), np.dtype(source.dtype)

    def layer(self, name: str) -> _SourceAsSample:
        return self

    def __getitem__(self, key) -> np.ndarray:  # (z, y-slice) as percentile_range reads it
        z, rows = key
        return self.source.read_region((slice(z, z + 1), rows, slice(None)))[0]


def _measure_range(client, source, spec: str, progress, cancel) -> tuple[float, float]:
    if source.value_range is not None or client is None:
        return volumes.volume_range(source, progress=progress, cancel=cancel)
    from deepscem.inference.distributed import cluster_range

    return cluster_range(client, spec, source.shape, source.dtype.itemsize)


class _maybe_cluster:
    """A context manager giving a dask Client for ``cluster`` (None: no client)."""

    def __init__(self, cluster: str | None, config: str | None) -> None:
        self.cluster, self.config, self._cm = cluster, config, None

    def __enter__(self):
        if not self.cluster:
            return None
        from deepscem.inference.distributed import connect

        self._cm = connect(self.cluster, config_file=self.config)
        return self._cm.__enter__()

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc) if self._cm is not None else False
