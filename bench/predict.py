"""Prediction benchmark: prints numbers side by side, never pass/fail.

(a) tiled prediction of a whole dataset sample (read tiles from HDF5, batch, forward, blend,
    write) vs the raw forward pass of the same model over the same tiles already in memory
    (the limit; goal >= 0.85 of it);
(b) the original DeepSCEM's naive loop (one ``model.predict`` + ``clear_session`` per tile) on
    the same volume, model and device (goal: ours >= 20x faster);
(c) peak RSS while predicting a >= 2 GiB volume, and a 4x smaller one, in fresh processes
    (goal < 1.5 GiB, independent of the volume size);
(d) with ``--model TRAINED.keras``: the inference engines side by side on Lucchi++ (raw and
    whole-volume Mvox/s, ratio to Keras float32 and to the raw forward pass, test IoU, largest
    probability difference to Keras) and the default tiling vs the previous default (see
    bench/predict_engines.py).

    python bench/predict.py                       # all three (c takes minutes on 2 CPU cores)
    python bench/predict.py --skip-rss            # (a) and (b) only
    python bench/predict.py --rss-child 2.0 OUT   # internal: one (c) measurement
    python bench/predict.py --skip-throughput --skip-rss --model lucchi.keras --batch-size 4

The model for (a)/(b) is the original's 31k-parameter 2D U-Net
(``../shared/data/original-format/orig_unet2d_res_f8_d3_o2.h5``) when present, else the same
architecture built here. (c) predicts a small volume with a small 2D U-Net (4 filters, depth 2:
the activations of a batch of tiles), then 0.5 and 2 GiB volumes through a 1x1-convolution
model (the pipeline's own memory: reads, blending buffers, writes) so the run takes minutes,
not hours, on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

ORIGINAL_MODEL = ROOT.parent / "shared" / "data" / "original-format" / "orig_unet2d_res_f8_d3_o2.h5"


def original_sized_model():
    from deepscem.config import UNetConfig
    from deepscem.models.storage import load_model, model_info_from
    from deepscem.models.unet import build_unet

    path = Path(os.environ.get("DEEPSCEM_SHARED_DATA", ORIGINAL_MODEL.parents[1])) \
        / "original-format" / ORIGINAL_MODEL.name
    if path.is_file():
        return (*load_model(path), f"original {path.name}")
    config = UNetConfig(dim=2, filters=8, depth=2, outputs=2, normalization="none")
    model = build_unet(config)
    return model, model_info_from(model, config), "built 2D U-Net (8 filters, depth 2)"


def make_dataset(path: Path, shape: tuple[int, int, int], seed: int = 0) -> Path:
    from deepscem.dataset import Dataset

    image = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    with Dataset.create(path, "bench", 1) as ds:
        ds.add_sample("volume", image, [None])
    return path


def bench_throughput(args, tmp: Path) -> None:
    import keras

    from deepscem.config import PredictConfig
    from deepscem.inference.predictor import Predictor, predict_dataset

    model, info, what = original_sized_model()
    shape = tuple(args.shape)
    voxels = int(np.prod(shape))
    print(f"model: {what}, {model.count_params():,} parameters; volume {shape} uint8; "
          f"batch {args.batch_size}; keras {keras.__version__} ({keras.backend.backend()})")
    src = make_dataset(tmp / "src.hdf5", shape)
    tile = (1, shape[1], shape[2])
    config = PredictConfig(patch=tile, overlap=0.0, batch_size=args.batch_size)

    # The same tiles in memory: raw forward throughput (warm, best of repeats).
    predictor = Predictor(model, info, config)
    x = np.random.default_rng(0).random((shape[0], shape[1], shape[2]), dtype=np.float32)
    predictor.model.predict_on_batch(x[:args.batch_size, ..., None])  # warm up / trace
    # Interleaved, best of repeats: on a shared machine the load changes from run to run.
    raw, tiled, raw_cpu, tiled_cpu = [], [], [], []
    for r in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, shape[0], args.batch_size):
            predictor.model.predict_on_batch(x[i:i + args.batch_size, ..., None])
        raw.append(time.perf_counter() - t0)
        raw_cpu.append(time.process_time() - c0)
        out = tmp / f"pred{r}.hdf5"
        t0, c0 = time.perf_counter(), time.process_time()
        predict_dataset(model, info, src, out, config)
        tiled.append(time.perf_counter() - t0)
        tiled_cpu.append(time.process_time() - c0)
        out.unlink()
    raw_t, tiled_t = min(raw), min(tiled)
    t0 = time.perf_counter()
    predict_dataset(model, info, src, tmp / "overlap.hdf5", PredictConfig(
        patch=(1, 128, 128), overlap=0.25, batch_size=args.batch_size))
    overlap_t = time.perf_counter() - t0

    print("\n(a) tiled prediction vs raw forward on the same tiles (whole slices, no overlap)")
    print(f"  raw forward, tiles in memory : {raw_t:7.3f} s  {voxels / raw_t / 1e6:8.2f} Mvox/s"
          f"  (CPU {min(raw_cpu):.2f} s)")
    print(f"  predict_dataset (HDF5 in/out): {tiled_t:7.3f} s  {voxels / tiled_t / 1e6:8.2f} Mvox/s"
          f"  (CPU {min(tiled_cpu):.2f} s)  -> {raw_t / tiled_t:.2f} of raw by wall time, "
          f"{min(raw_cpu) / min(tiled_cpu):.2f} by CPU time (goal >= 0.85)")
    print(f"  all runs, wall s: raw {' '.join(f'{t:.2f}' for t in raw)}; tiled "
          f"{' '.join(f'{t:.2f}' for t in tiled)}")
    print(f"  predict_dataset, 128^2 tiles, overlap 0.25 (more tiles, blended): {overlap_t:.3f} s"
          f"  {voxels / overlap_t / 1e6:.2f} Mvox/s of volume")

    if args.skip_naive:
        return
    # The original's loop: one model.predict per tile, and clear_session after each.
    t0, c0 = time.perf_counter(), time.process_time()
    out = np.zeros(shape + (predictor.outputs,), np.float32)
    for z in range(shape[0]):
        out[z] = model.predict(x[z:z + 1, ..., None], verbose=0)[0]
        keras.backend.clear_session()
    naive_t, naive_cpu = time.perf_counter() - t0, time.process_time() - c0
    print("\n(b) the original's per-tile model.predict + clear_session loop, same tiles")
    print(f"  naive loop: {naive_t:7.3f} s (CPU {naive_cpu:.2f} s)   ours: {tiled_t:.3f} s (CPU "
          f"{min(tiled_cpu):.2f} s)   -> ours {naive_t / tiled_t:.1f}x faster by wall time, "
          f"{naive_cpu / min(tiled_cpu):.1f}x by CPU time (goal >= 20x)")


def rss_child(gib: float, kind: str, out_dir: Path) -> None:
    """Build a ~gib GiB uint8 volume slab by slab, then predict it; print peak RSS.

    kind "unet": a 2D U-Net (4 filters, depth 2); "conv": a 1x1 convolution + sigmoid, whose
    compute is negligible, to push gigabytes through the same pipeline (reads, batching,
    blending buffers, writes) in minutes on a small CPU.
    """
    import keras
    import psutil

    from deepscem.config import PredictConfig, UNetConfig
    from deepscem.dataset import Dataset
    from deepscem.inference.predictor import predict_dataset
    from deepscem.models.storage import model_info_from
    from deepscem.models.unet import build_unet

    y = x = 1024
    z = max(1, int(gib * 2**30 / (y * x)))
    src = out_dir / f"big_{kind}_{gib}.hdf5"
    with Dataset.create(src, "big", 1) as ds:
        sample = ds.add_empty_sample("volume", (z, y, x))
        image = sample.create_layer("image", np.uint8)
        image.attrs["norm_min"], image.attrs["norm_max"] = 0.0, 255.0
        pattern = (np.add.outer(np.arange(y), np.arange(x)) % 256).astype(np.uint8)
        for z0 in range(0, z, 64):
            image[z0:z0 + 64] = pattern[None]
    if kind == "unet":
        config = UNetConfig(dim=2, filters=4, depth=2, normalization="none")
        model = build_unet(config)
        info = model_info_from(model, config)
    else:
        inputs = keras.Input((None, None, 1))
        model = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs))
        info = None
    proc = psutil.Process()
    before = proc.memory_info().rss
    peak = [before]
    stop = threading.Event()

    def sample_rss():
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.05)

    watcher = threading.Thread(target=sample_rss, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    predict_dataset(model, info, src, out_dir / f"pred_{kind}_{gib}.hdf5",
                    PredictConfig(threshold=0.5, batch_size=4))
    elapsed = time.perf_counter() - t0
    stop.set()
    watcher.join()
    print(f"{kind:4s} volume ({z}, {y}, {x}) uint8 = {z * y * x / 2**30:.2f} GiB: peak RSS while "
          f"predicting {peak[0] / 2**30:.2f} GiB (before {before / 2**30:.2f} GiB), "
          f"{elapsed:.0f} s, {z * y * x / elapsed / 1e6:.1f} Mvox/s")


def bench_rss(args, tmp: Path) -> None:
    print("\n(c) peak RSS predicting large volumes (default tiles 512^2, overlap 0.25, batch 4, "
          "threshold 0.5), each in a fresh process")
    for kind, gib in (("unet", args.unet_gib), ("conv", args.big_gib / 4), ("conv", args.big_gib)):
        result = subprocess.run([sys.executable, __file__, "--rss-child", str(gib), kind,
                                 str(tmp)], capture_output=True, text=True)
        print("  " + (result.stdout.strip() or result.stderr.strip()[-2000:]))
        for f in tmp.glob(f"*_{kind}_{gib}.hdf5"):
            f.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", nargs=3, type=int, default=(32, 256, 256), metavar=("Z", "Y", "X"))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big-gib", type=float, default=2.0,
                        help="(c) volume size pushed through a 1x1-conv model")
    parser.add_argument("--unet-gib", type=float, default=0.03,
                        help="(c) volume size predicted with a small U-Net")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--model", type=Path,
                        help="(d) a trained 2D model (.keras) to compare the inference engines "
                             "and tilings with on Lucchi++, e.g. the lucchi.keras that "
                             "`python bench/lucchi.py --minutes 7 --work DIR` leaves in DIR")
    parser.add_argument("--data", type=Path, help="Lucchi++ TIFF folder (default ../shared/data/"
                        "lucchi-pp)")
    parser.add_argument("--test-slices", type=int, default=40,
                        help="(d) Lucchi++ test slices predicted and scored (default %(default)s)")
    parser.add_argument("--int8", action="store_true", help="(d) also ONNX Runtime int8")
    parser.add_argument("--tiling-only", action="store_true", help="(d) only the tiling part")
    parser.add_argument("--rss-child", nargs=3, metavar=("GIB", "KIND", "DIR"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(float(args.rss_child[0]), args.rss_child[1], Path(args.rss_child[2]))
        return
    print(f"machine: {os.cpu_count()} CPU cores (load average {os.getloadavg()[0]:.1f} at start)")
    with tempfile.TemporaryDirectory(prefix="deepscem-bench-") as tmp:
        if not args.skip_throughput:
            bench_throughput(args, Path(tmp))
        if not args.skip_rss:
            bench_rss(args, Path(tmp))
        if args.model:
            bench_engines_on_lucchi(args, Path(tmp))


def bench_engines_on_lucchi(args, tmp: Path) -> None:
    """(d): see bench/predict_engines.py."""
    import tifffile
    from lucchi import DEFAULT_DATA, build_datasets
    from predict_engines import bench_engines

    from deepscem.dataset import Dataset

    data = args.data or DEFAULT_DATA
    _, test_ds = build_datasets(data, tmp, args.test_slices)
    wide = tmp / "wide.hdf5"
    image = tifffile.imread(data / "test_image.tif", key=range(min(8, args.test_slices)))
    image = np.pad(image, ((0, 0), (0, 512), (0, 640)), mode="symmetric")  # 1024 x 1280
    with Dataset.create(wide, "wide", 1) as ds:
        ds.add_sample("wide", image, [None])
    bench_engines(args.model, test_ds, wide, tmp, batch=args.batch_size, repeats=args.repeats,
                  int8=args.int8, tiling_only=args.tiling_only)


if __name__ == "__main__":
    main()
