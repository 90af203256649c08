"""Block-wise prediction on a Dask cluster (dask.distributed; dask-jobqueue for batch systems).

``--cluster`` values:

* ``local:N`` -- a ``LocalCluster`` of N worker processes (1 thread each) started and stopped
  by the command; on a machine with several GPUs worker i uses GPU ``i % GPUs``;
* ``tcp://HOST:PORT`` -- an existing scheduler (``dask scheduler`` + ``dask worker`` processes);
* ``slurm:JOBS`` (also ``pbs:``, ``lsf:``, ``sge:``) -- a dask-jobqueue cluster of JOBS batch
  jobs, configured by dask's ``jobqueue`` settings (``~/.config/dask/jobqueue.yaml`` or the
  YAML file given with ``--cluster-config``; see docs/big_volumes.md).

Every worker loads the model once (:class:`ModelLoader`, a worker plugin) and runs
:func:`deepscem.inference.block_tasks.run_block` for the blocks it is given; each block is
one task, so a block is written by one worker at a time, and the scheduler reruns the tasks
of a worker that dies on another one. Workers and the command must see the same files
(input, model and output on a shared file system).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from deepscem import progress as prog
from deepscem.errors import ConfigError

JOBQUEUE_KINDS = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "lsf": "LSFCluster",
                  "sge": "SGECluster"}
#: Times a block is retried after an error in it (a lost worker's blocks are rerun anyway).
RETRIES = 3


def parse_cluster(text: str) -> tuple[str, Any]:
    """``local:4`` -> ("local", 4); ``tcp://h:8786`` -> ("address", "tcp://h:8786");
    ``slurm:8`` -> ("slurm", 8). :class:`ConfigError` for anything else."""
    kind, sep, value = text.partition(":")
    if kind in ("tcp", "tls", "ucx", "inproc") and value.startswith("//"):
        return "address", text
    if sep and (kind == "local" or kind in JOBQUEUE_KINDS) and value.isdigit() and int(value) > 0:
        return kind, int(value)
    raise ConfigError(f"--cluster {text!r}: give local:N (N worker processes here), "
                      "tcp://HOST:PORT (a running dask scheduler) or slurm:JOBS (also pbs:, lsf:, "
                      "sge:) with N and JOBS whole numbers >= 1")


@contextlib.contextmanager
def connect(text: str, *, config_file: str | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``--cluster text``; a cluster this starts is stopped on exit."""
    import dask
    from distributed import Client, LocalCluster

    kind, value = parse_cluster(text)
    if config_file:
        dask.config.update(dask.config.config, _read_config(config_file), priority="new")
    if kind == "address":
        try:
            client = Client(value, timeout="20s")
        except OSError as err:
            raise ConfigError(f"no dask scheduler answers at {value} ({err}); start one with "
                              "'dask scheduler' and workers with 'dask worker ADDRESS'") from None
        with client:
            yield client
        return
    if kind == "local":
        # Dask's statistical profiler samples every 10 ms: measurable CPU beside 1-thread
        # TensorFlow tasks, and nobody reads it without a dashboard.
        with dask.config.set({"distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(n_workers=value, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
    else:
        cluster = jobqueue_cluster(kind)
        cluster.scale(jobs=value)
    with cluster, Client(cluster) as client:
        if kind != "local":
            client.wait_for_workers(1, timeout=dask.config.get("deepscem.wait", 3600))
        yield client


def _read_config(path: str) -> dict:
    import yaml

    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"--cluster-config {path}: cannot read it ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--cluster-config {path}: expected a YAML mapping such as "
                          "'jobqueue: {slurm: {cores: 4, memory: 16GB}}'")
    return data


def jobqueue_cluster(kind: str) -> Any:
    """A dask-jobqueue cluster of ``kind`` built from dask's ``jobqueue.<kind>`` settings."""
    import dask_jobqueue

    try:
        return getattr(dask_jobqueue, JOBQUEUE_KINDS[kind])()
    except ValueError as err:  # e.g. cores/memory missing from the settings
        raise ConfigError(f"{kind} cluster: {err}; set jobqueue.{kind} (cores, memory, queue...) "
                          "in ~/.config/dask/jobqueue.yaml or --cluster-config FILE") from None


class ModelLoader:
    """Worker plugin: pins the worker to a GPU (several GPUs), limits the backend to the
    worker's threads, gives its allocator the settings of a plain process, and loads the
    model once, before the first block."""

    name = "deepscem-model"

    def __init__(self, model_path: str, config: Any) -> None:
        self.model_path, self.config = model_path, config

    def setup(self, worker: Any) -> None:
        _pin_gpu(worker.name)
        _plain_malloc()
        _limit_threads(int(getattr(worker.state, "nthreads", 1) or 1))
        from deepscem.inference.block_tasks import cached_predictor

        cached_predictor(self.model_path, self.config)

    def teardown(self, worker: Any) -> None:
        pass

    def transition(self, *args: Any, **kwargs: Any) -> None:
        pass


def _pin_gpu(name: Any) -> None:
    """One worker per GPU: worker i sees GPU i % n (before the backend starts)."""
    if "CUDA_VISIBLE_DEVICES" in os.environ or not isinstance(name, int):
        return
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return
    gpus = [line for line in listing.stdout.splitlines() if line.startswith("GPU ")]
    if len(gpus) > 1:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(name % len(gpus))


#: glibc's ceilings for its own dynamic thresholds on 64-bit (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)
_MMAP_THRESHOLD, _TRIM_THRESHOLD = 32 << 20, 64 << 20


def _plain_malloc() -> None:
    """Undo the allocator setting a Dask nanny gives its worker (``MALLOC_TRIM_THRESHOLD_=65536``,
    ``distributed.nanny.pre-spawn-environ``). Setting it turns off glibc's dynamic mmap
    threshold, so every buffer over 128 KB -- each batch of activations -- is a fresh mmap,
    page-faulted and zeroed: 5x the system time and ~20 % slower blocks than the same code in
    one process (bench/distributed.py). The steady state of the dynamic thresholds (32 MB mmap,
    64 MB trim) is restored with ``mallopt``; buffers above 32 MB are still returned at once.
    Not glibc (macOS, musl): nothing to do."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: its C library, no library search
        libc.mallopt(-3, _MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, _TRIM_THRESHOLD)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # no glibc mallopt
        return


def _limit_threads(threads: int) -> None:
    """A worker with 1 thread runs TensorFlow on 1 core: N workers share N cores fairly."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # already initialised in this process
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def prepare_workers(client: Any, job: dict) -> None:
    """Every worker (and any that joins later) loads the model once, before its first block."""
    from deepscem.inference.block_tasks import job_config

    client.register_plugin(_as_plugin(ModelLoader(job["model"], job_config(job))))


def run_blocks(client: Any, job: dict, todo: list, total: int, *,
               progress: prog.ProgressCallback | None = None,
               cancel: prog.CancelToken | None = None) -> None:
    """Run ``todo`` blocks of ``job`` on the cluster (after :func:`prepare_workers`), one task
    each; progress counts blocks (of ``total``, the finished ones of a resumed run included)."""
    from distributed import as_completed

    from deepscem.inference.block_tasks import BlockMeter, run_block, task_job

    meter = BlockMeter(total, total - len(todo), progress)
    slim = task_job(job)
    run = f"{os.getpid()}-{time.time_ns()}"
    futures = [client.submit(run_block, slim, blk, key=f"deepscem-block-{blk.index}-{run}",
                             retries=RETRIES, pure=False) for blk in todo]
    try:
        for future in as_completed(futures):
            prog.check(cancel)
            meter.add(future.result())
    except BaseException:
        client.cancel(futures)
        raise


def _as_plugin(loader: ModelLoader) -> Any:
    from distributed.diagnostics.plugin import WorkerPlugin

    class Plugin(WorkerPlugin):
        name = loader.name

        def setup(self, worker: Any) -> None:
            loader.setup(worker)

    return Plugin()


def _slab_range(spec: str, z0: int, z1: int) -> tuple[float, float]:
    import numpy as np

    from deepscem.inference.block_tasks import _source

    slab = _source(spec, "range").read(z0, z1)
    if slab.dtype.kind == "f":
        slab = slab[np.isfinite(slab)]
    return (float(slab.min()), float(slab.max())) if slab.size else (np.inf, -np.inf)


def cluster_range(client: Any, spec: str, shape: tuple, itemsize: int) -> tuple[float, float]:
    """The volume-wide (min, max) of ``spec``, slabs of about 64 MB read by the workers."""
    z, y, x = shape
    depth = max(1, (64 * 2**20) // max(1, y * x * itemsize))
    futures = [client.submit(_slab_range, spec, z0, min(z, z0 + depth), pure=False)
               for z0 in range(0, z, depth)]
    ranges = client.gather(futures)
    lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    return (lo, hi) if lo <= hi else (0.0, 0.0)
