"""Instances on Lucchi++ (connected components vs the boundary watershed) and at scale.

    python bench/instances.py quality --minutes 8 --work /tmp/inst   # train, predict, compare
    python bench/instances.py quality --model /tmp/inst/boundary.keras --work /tmp/inst
    python bench/instances.py scale --gib 0.5 2                       # throughput, peak RSS
    python bench/instances.py join PRED.hdf5 TEST.hdf5 --levels 0.4 0.2 0.05

join: scores connected components of an existing prediction (its first sample's
prediction_0000) against the test labels, then components joined through uncertain voxels:
connectivity taken from probability > level, the mask kept at > 0.5 (so voxel scores are
unchanged): does joining fragments of one object along Z raise AP?

quality: builds the Lucchi++ datasets (voxel size 5 x 5 x 5 nm), trains the default 2D U-Net
created with boundary outputs (``model create --boundary``: mask + boundary per label, targets
derived from the labels on the fly) for a time budget, predicts the test volume once (float
masks and boundaries), then labels instances from that same prediction two ways: connected
components of the mask, and the seeded watershed on the boundary output, each with and without
a minimum object size. Each is scored against the reference objects (3D connected components of
the test labels): object count, AP-50, AP-75, matched / split / merged / missed / false.

scale: writes a synthetic uint8 mask volume of the given size (blobs crossing every block
face) to an HDF5 file, then labels its connected components block by block in a child process
and prints voxels/s and the child's peak RSS (ru_maxrss), one line per size.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

LUCCHI_VOXEL_NM = (5.0, 5.0, 5.0)


def quality(args: argparse.Namespace, work: Path) -> None:
    import numpy as np
    from lucchi import build_datasets

    from deepscem.config import PredictConfig, TrainConfig, UNetConfig
    from deepscem.dataset import Dataset
    from deepscem.evaluation.instance_metrics import score_ids
    from deepscem.inference.predictor import predict_dataset
    from deepscem.models.storage import load_model, model_info_from, save_model
    from deepscem.models.unet import build_unet
    from deepscem.postprocessing.instances import InstanceConfig, label_instances, ndlabel

    work.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at start "
          "(machine shared by 8 workers: times are upper bounds, scores from a reduced budget)")
    train_ds, test_ds = build_datasets(args.data, work, None)
    for path in (train_ds, test_ds):
        with Dataset.open(path, "r+") as ds:
            for sample in ds:
                sample.set_voxel_size(LUCCHI_VOXEL_NM)
    if args.model:
        model, info = load_model(args.model)
    else:
        unet = UNetConfig(outputs=2)
        model = build_unet(unet)
        info = model_info_from(model, unet)
        info.targets, info.label_names = "label+boundary", ["mito", "mito boundary"]
        config = TrainConfig(steps_per_epoch=32, epochs=10_000, validation_steps=0, seed=0,
                             time_limit_minutes=args.minutes, lr_schedule="cosine")
        t0 = time.perf_counter()
        from deepscem.training.trainer import train

        result = train(model, info, [train_ds], None, config, log_path=work / "boundary_log.csv")
        model, info = result.model, result.info
        save_model(model, work / "boundary.keras", info, overwrite=True)
        print(f"trained {result.steps_done} steps of 8 x 256² in {time.perf_counter() - t0:.0f} s "
              f"({args.minutes} min budget, stopped: {result.stopped_reason})")
    pred_path = work / "boundary_pred.hdf5"
    t0 = time.perf_counter()
    predict_dataset(model, info, test_ds, pred_path, PredictConfig(z_smooth=args.z_smooth),
                    overwrite=True)
    print(f"predicted the test volume in {time.perf_counter() - t0:.0f} s")
    with Dataset.open(test_ds) as ref, Dataset.open(pred_path) as pred:
        reference, n_ref = ndlabel(ref.sample("test").read_layer("label_0000") > 0)
        mask = pred.sample("test").read_layer("prediction_0000")
        boundary = pred.sample("test").read_layer("prediction_0000_boundary")
    voxel_iou = np.count_nonzero((mask > 0.5) & (reference > 0)) / np.count_nonzero(
        (mask > 0.5) | (reference > 0))
    print(f"reference: {n_ref} objects (3D connected components); foreground IoU {voxel_iou:.4f}")
    print(f"{'method':<44}{'objects':>8}{'AP-50':>8}{'AP-75':>8}  matched/split/merged/missed/false"
          f"{'time':>8}")
    runs = [("components", 0.5)] + [("watershed", seed) for seed in args.seed]
    for min_size in (0, args.min_size):
        for method, seed in runs:
            config = InstanceConfig(method=method, threshold=0.5, seed_threshold=seed,
                                    min_size=min_size)
            out = np.zeros(mask.shape, np.uint32)
            t0 = time.perf_counter()
            result = label_instances(mask, out, boundary=boundary if method == "watershed"
                                     else None, config=config)
            took = time.perf_counter() - t0
            s = score_ids(reference, out)
            c = s.counts
            name = f"{method}{f' (seeds < {seed:g})' if method == 'watershed' else ''}, " \
                f"min size {min_size}"
            print(f"{name:<44}{result.objects:>8}{s.average_precision(0.5):>8.3f}"
                  f"{s.average_precision(0.75):>8.3f}  {c['matched']}/{c['split']}/{c['merged']}/"
                  f"{c['missed']}/{c['false']}{took:>7.1f}s")


def make_volume(path: Path, gib: float) -> tuple[int, int, int]:
    """A (Z, 2048, 2048) uint8 mask of about ``gib`` GiB: smoothed-noise blobs in a 32 x 512 x
    512 tile, rolled differently per slab so objects differ and cross every block face."""
    import h5py
    import numpy as np
    from scipy import ndimage

    from deepscem.dataset.format import layer_options

    depth = max(32, int(gib * 2**30 / 2048 / 2048) // 32 * 32)
    shape = (depth, 2048, 2048)
    rng = np.random.default_rng(0)
    tile = ndimage.gaussian_filter(rng.random((32, 512, 512), dtype=np.float32), 4) > 0.52
    with h5py.File(path, "w") as f:
        out = f.create_dataset("mask", shape=shape, dtype=np.uint8,
                               **layer_options(shape, np.dtype(np.uint8), "mask"))
        for z0 in range(0, depth, 32):
            slab = np.tile(np.roll(tile, (z0 * 37) % 512, axis=2), (1, 4, 4))
            out[z0:z0 + 32] = slab
    return shape


def scale(args: argparse.Namespace, work: Path) -> None:
    for gib in args.gib:
        path = work / f"mask_{gib:g}.hdf5"
        if not path.exists():
            t0 = time.perf_counter()
            make_volume(path, gib)
            print(f"wrote {path.name} in {time.perf_counter() - t0:.0f} s")
        out = subprocess.run([sys.executable, __file__, "scale-child", str(path)],
                             capture_output=True, text=True, check=True)
        print(out.stdout.strip())


def scale_child(path: str) -> None:
    import h5py
    import numpy as np

    from deepscem.dataset.format import layer_options
    from deepscem.postprocessing.instances import label_instances

    fd, out_path = tempfile.mkstemp(suffix=".hdf5", dir=Path(path).parent)
    os.close(fd)
    try:
        with h5py.File(path) as f, h5py.File(out_path, "w") as g:
            mask = f["mask"]
            shape = mask.shape
            out = g.create_dataset("instance_0000", shape=shape, dtype=np.uint32,
                                   **layer_options(shape, np.dtype(np.uint32), "instance_0000"))
            t0 = time.perf_counter()
            result = label_instances(mask, out)
            took = time.perf_counter() - t0
        voxels = int(np.prod(shape))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{voxels / 2**30:.2f} GiB mask {shape}: {result.objects} objects in {took:.0f} s "
              f"({voxels / took / 1e6:.1f} Mvox/s), peak RSS {rss:.0f} MiB")
    finally:
        os.unlink(out_path)


def join(args: argparse.Namespace) -> None:
    import numpy as np

    from deepscem.dataset import Dataset
    from deepscem.evaluation.instance_metrics import score_ids
    from deepscem.postprocessing.instances import ndlabel

    with Dataset.open(args.prediction) as pred, Dataset.open(args.reference) as ref:
        name = pred.sample_names()[0]
        probability = pred.sample(name).read_layer("prediction_0000")
        reference, n_ref = ndlabel(ref.sample(name).read_layer("label_0000") > 0)
    mask = probability > 0.5
    print(f"reference: {n_ref} objects; rows: connectivity from probability > level, mask > 0.5")
    print(f"{'level':>6}{'min size':>10}{'objects':>9}{'AP-50':>8}{'AP-75':>8}"
          "  matched/split/merged/missed/false")
    for level in [0.5, *args.levels]:
        ids, _ = ndlabel(probability > level)
        ids[~mask] = 0
        for min_size in (0, args.min_size):
            out = ids.copy()
            if min_size:
                small = np.bincount(out.ravel()) < min_size
                small[0] = False
                out[small[out]] = 0
            s = score_ids(reference, out)
            c = s.counts
            objects = len(np.unique(out)) - 1
            print(f"{level:>6g}{min_size:>10}{objects:>9}{s.average_precision(0.5):>8.3f}"
                  f"{s.average_precision(0.75):>8.3f}  {c['matched']}/{c['split']}/{c['merged']}/"
                  f"{c['missed']}/{c['false']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    q = sub.add_parser("quality", help="Lucchi++: components vs watershed")
    from lucchi import DEFAULT_DATA

    q.add_argument("--data", type=Path, default=DEFAULT_DATA)
    q.add_argument("--work", type=Path)
    q.add_argument("--minutes", type=float, default=8.0, help="training budget (default 8)")
    q.add_argument("--model", type=Path, help="a trained boundary model (skips training)")
    q.add_argument("--min-size", type=int, default=2000, help="second row's minimum object size "
                   "in voxels (default 2000 = 2.5e5 nm³ at 5 nm)")
    q.add_argument("--seed", type=float, nargs="+", default=[0.5],
                   help="seed thresholds on the boundary (one watershed row each; default 0.5)")
    q.add_argument("--z-smooth", type=float, default=0.0)
    s = sub.add_parser("scale", help="throughput and peak RSS on large masks")
    s.add_argument("--gib", type=float, nargs="+", default=[0.5, 2.0])
    s.add_argument("--work", type=Path)
    j = sub.add_parser("join", help="components joined through uncertain voxels, on a prediction")
    j.add_argument("prediction", type=Path, help="prediction file (prediction_0000 as probabilities)")
    j.add_argument("reference", type=Path, help="dataset with label_0000 for the same sample name")
    j.add_argument("--levels", type=float, nargs="+", default=[0.4, 0.3, 0.2, 0.1, 0.05])
    j.add_argument("--min-size", type=int, default=1000)
    c = sub.add_parser("scale-child")
    c.add_argument("path")
    args = parser.parse_args()
    if args.what == "scale-child":
        scale_child(args.path)
        return
    if args.what == "join":  # reads files given, writes nothing: no work folder
        join(args)
        return
    run = quality if args.what == "quality" else scale
    if args.work:
        run(args, args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="deepscem-instances-") as tmp:
            run(args, Path(tmp))


if __name__ == "__main__":
    main()
