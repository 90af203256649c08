"""Distributed prediction benchmark: prints numbers side by side, never pass/fail.

(a) throughput of the same block-wise prediction (an OME-Zarr uint8 input into an OME-Zarr
    output) in one process, on a local Dask cluster of 1 worker and of N workers (1 thread
    each, TensorFlow limited to 1 thread everywhere). Goals: 1 worker / one process >= 0.9
    (the engine's overhead), 2 workers / 1 worker >= 1.8;
(b) peak RSS per worker (and of the command) predicting a small and a >= 2 GiB input on a local
    cluster of 2 workers: flat in the volume size is the goal. A 1x1-convolution model keeps
    (b) to minutes on 2 CPU cores: it measures the pipeline's own memory (reads, blending
    buffers, writes), not a network's activations (bench/predict.py covers those).

    python bench/distributed.py                        # (a) at 1 and 2 workers, then (b)
    python bench/distributed.py --workers 1 2 4 8      # a larger machine
    python bench/distributed.py --skip-rss --shape 32 512 512

Model time, not cluster start-up, is measured: workers are started and load the model before
the clock starts. Numbers from a shared machine are lower bounds (say so when quoting them).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
# this file's folder first on sys.path would make `import distributed` import this very script
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402


def make_input(path: Path, shape: tuple[int, int, int], seed: int = 0) -> Path:
    """An OME-Zarr uint8 image of ``shape``, EM-like blobs, written slab by slab."""
    import zarr
    from synthetic_data import synthetic_volume

    from deepscem.dataset import ome_zarr

    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    chunks = (8, 256, 256)
    array = ome_zarr.create_image(root, "bench", shape, np.uint8, chunks, (10.0, 5.0, 5.0))
    tile, _ = synthetic_volume((8, min(shape[1], 512), min(shape[2], 512)), seed=seed)
    reps = (1, -(-shape[1] // tile.shape[1]), -(-shape[2] // tile.shape[2]))
    slab = np.tile(tile, reps)[:, :shape[1], :shape[2]]
    for z0 in range(0, shape[0], 8):
        array[z0:z0 + 8] = np.roll(slab, z0, axis=2)[:min(8, shape[0] - z0)]
    return path


def make_model(path: Path, pointwise: bool = False) -> Path:
    """A 2D U-Net (8 filters, depth 2) or a 1x1 convolution (``pointwise``), sigmoid."""
    import keras
    from training_data import tiny_unet

    from deepscem.models.storage import save_model

    model, info = tiny_unet(dim=2, outputs=1, depth=2, filters=8, normalization="none")
    if pointwise:
        inputs = keras.Input((None, None, 1))
        model = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs))
    return save_model(model, path, info)


def limit_tf_threads() -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def local_cluster(n: int):
    """As ``--cluster local:N`` makes it (deepscem.inference.distributed.connect)."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.worker.profile.enabled": False}):
        return LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                            dashboard_address=None)


def run(model: Path, image: Path, out: Path, cluster: str | None, block) -> dict:
    from deepscem.config import PredictConfig
    from deepscem.inference.volume_job import predict_to_file

    config = PredictConfig(patch=(1, 256, 256), threshold=0.5, batch_size=4)
    return predict_to_file(model, str(image), out, config, cluster=cluster, block=block,
                           overwrite=True, value_range=(0.0, 255.0))


def worker_rss(client) -> list[float]:
    """Peak RSS (MB) of each worker process so far."""
    def peak() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    return sorted(client.run(peak).values())


def cpu_seconds(client=None) -> float:
    """CPU seconds used so far by this process, or by all the cluster's workers."""
    import psutil

    def used() -> float:
        times = psutil.Process().cpu_times()
        return times.user + times.system

    return sum(client.run(used).values()) if client is not None else used()


def throughput(args, folder: Path) -> None:
    from distributed import Client

    shape = tuple(args.shape)
    image = make_input(folder / "in.ome.zarr", shape)
    model = make_model(folder / "unet.keras")
    block = (args.block_slices, shape[1], shape[2])
    mvox = np.prod(shape) / 1e6
    print(f"(a) throughput: {shape} uint8 ({mvox:.1f} Mvox), 2D U-Net 8 filters depth 2, tiles "
          f"256x256, blocks {block} ({-(-shape[0] // block[0])} blocks), 1 thread per process")
    run(model, image, folder / "warm.ome.zarr", None, (2, *shape[1:]))  # traces the model once
    rows = []
    cpu = cpu_seconds()
    summary = run(model, image, folder / "one.ome.zarr", None, block)
    rows.append(("one process", summary["seconds"], cpu_seconds() - cpu))
    for n in args.workers:
        with local_cluster(n) as cluster, Client(cluster) as client:
            address = cluster.scheduler_address
            run(model, image, folder / "warm.ome.zarr", address, (2, *shape[1:]))  # model + trace
            cpu = cpu_seconds(client)
            summary = run(model, image, folder / f"w{n}.ome.zarr", address, block)
            rows.append((f"local cluster, {n} worker{'s' if n > 1 else ''}", summary["seconds"],
                         cpu_seconds(client) - cpu))
    one, w1 = rows[0][1], dict((r[0], r[1]) for r in rows).get("local cluster, 1 worker")
    print(f"{'run':<26} {'wall s':>7} {'Mvox/s':>7} {'vs one process':>15} {'vs 1 worker':>12} "
          f"{'CPU s':>7} {'Mvox per CPU s':>15}")
    for name, seconds, cpu in rows:
        vs1 = f"{w1 / seconds:.2f}x" if w1 and "cluster" in name else ""
        print(f"{name:<26} {seconds:7.1f} {mvox / seconds:7.2f} {one / seconds:14.2f}x {vs1:>12} "
              f"{cpu:7.1f} {mvox / cpu:15.2f}")


def rss(args, folder: Path) -> None:
    from distributed import Client

    model = make_model(folder / "pointwise.keras", pointwise=True)
    side = 1024
    sizes = [("small", max(8, int(args.rss_gib * 2**30 / 8 / side / side))),
             ("big", int(args.rss_gib * 2**30 / side / side))]
    print(f"\n(b) peak RSS, local cluster of 2 workers, 1x1-conv model, slices {side}x{side} uint8")
    print(f"{'input':<24} {'GiB':>6} {'seconds':>8} {'Mvox/s':>8} {'worker peak RSS (MB)':>22} "
          f"{'command RSS (MB)':>17}")
    for label, depth in sizes:
        shape = (depth, side, side)
        image = make_input(folder / f"{label}.ome.zarr", shape)
        with local_cluster(2) as cluster, Client(cluster) as client:
            summary = run(model, image, folder / f"{label}-out.ome.zarr",
                          cluster.scheduler_address, None)
            peaks = worker_rss(client)
        command = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        gib = np.prod(shape) / 2**30
        print(f"{str(shape):<24} {gib:6.2f} {summary['seconds']:8.1f} "
              f"{np.prod(shape) / 1e6 / summary['seconds']:8.2f} "
              f"{' / '.join(f'{p:.0f}' for p in peaks):>22} {command:17.0f}")
        for path in folder.glob(f"{label}*"):
            import shutil

            shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", nargs=3, type=int, default=[32, 768, 768], metavar=("Z", "Y", "X"))
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--block-slices", type=int, default=2,
                        help="Z slices per block (a block is the unit of work sent to a worker)")
    parser.add_argument("--rss-gib", type=float, default=2.0, help="size of the big input (b)")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    limit_tf_threads()  # before TensorFlow starts: the one-process run uses 1 thread, as a worker
    sys.stdout.reconfigure(line_buffering=True)
    print(f"machine: {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory(prefix="deepscem-bench-", dir=os.environ.get("TMPDIR")) as tmp:
        if not args.skip_throughput:
            throughput(args, Path(tmp))
        if not args.skip_rss:
            rss(args, Path(tmp))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
