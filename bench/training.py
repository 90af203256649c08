"""Training benchmark: patches/s and FLOP/s of train() vs plain fit, idle and busy; peak RSS.

    python bench/training.py                      # lucchi-pp + a generated >= 2 GiB dataset
    python bench/training.py --big-gib 0          # throughput only
    python bench/training.py --data DIR           # where lucchi-pp lives (default ../shared/data)
    python bench/training.py --lucchi-3d 8        # only: 8 minutes of 3D training, then test IoU

Prints numbers, never pass/fail. The throughput pair is measured twice in one run: as the
machine is, then with a second process spinning on one core (``--no-busy`` skips it); FLOP/s
are patches/s x the convolutions' operations per training patch (forward + backward).

Throughput: one model (TrainConfig/UNetConfig defaults unless overridden: 2D residual
U-Net, 16 filters, depth 4, BatchNorm; batch 8 of 256x256 patches, computed in passes of
``--micro`` patches, default train()'s) is trained twice in this process, each time inside
one ``fit`` call: first by ``training.trainer.train`` from the lucchi-pp training volume on
disk (sampler + label focus + rotate/flip + callbacks, the real pipeline), then by
``model.fit`` on a PyDataset returning ready-made random tensors in passes of the same size
with the same gradient accumulation (the upper limit: no data work at all). Patches/s are
timed step by step after ``--warmup`` steps, so tracing and pipeline start-up are excluded.

Peak RSS: a child process trains ``--rss-steps`` steps with label focus from a small file
(lucchi-pp, 54 MB of image) and from a generated file of ``--big-gib`` GiB (incompressible
noise image, blob labels); its VmHWM is reported for each, so growth with file size shows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = Path(os.environ.get("DEEPSCEM_SHARED_DATA") or ROOT.parent / "shared" / "data")


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it starts afresh at exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def lucchi_dataset(data: Path, out: Path) -> Path:
    """lucchi-pp's training volume as a dataset; with ``data`` None, a generated stand-in
    (``--synthetic``: on machines without ../shared, such as the GPU machine)."""
    from deepscem.dataset import Dataset

    if data is None:
        return stand_in_dataset(out.with_name("stand-in.hdf5"))
    if not out.exists():
        with Dataset.create(out, "lucchi-pp", 1) as ds:
            ds.add_sample("train", data / "lucchi-pp" / "train_image.tif",
                          [data / "lucchi-pp" / "train_label.tif"])
    return out


def stand_in_dataset(out: Path, shape: tuple[int, int, int] = (165, 768, 1024)) -> Path:
    """A uint8 noise image of the original EPFL stack's size (lucchi-pp's training volume is
    165 x 512 x 640), labels a grid of balls (~8 % of the voxels, Lucchi++ has ~6 %), chunked
    like any dataset: what batch building costs does not depend on what the image shows."""
    from deepscem.dataset import Dataset, label_name

    if out.exists():
        return out
    rng = np.random.default_rng(0)
    zz, yy, xx = np.ogrid[:shape[0], :shape[1], :shape[2]]
    balls = ((zz % 64 - 32) ** 2 + (yy % 128 - 64) ** 2 + (xx % 128 - 64) ** 2 < 28**2).astype(np.uint8)
    with Dataset.create(out, "stand-in", 1) as ds:
        sample = ds.add_empty_sample("stand-in", shape)
        image = sample.create_layer("image", np.uint8)
        image.attrs["norm_min"], image.attrs["norm_max"] = 0.0, 255.0
        image[:] = rng.integers(0, 256, shape, np.uint8)
        sample.create_layer(label_name(0), np.uint8)[:] = balls
    return out


def big_dataset(out: Path, gib: float) -> Path:
    """A (Z, 2048, 2048) uint8 noise image of >= ``gib`` GiB on disk, labels: a grid of balls."""
    from deepscem.dataset import Dataset, label_name

    if out.exists():
        return out
    z = int(np.ceil(gib * 2**30 / 2048**2))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:2048, :2048]
    balls = (((yy % 256) - 128) ** 2 + ((xx % 256) - 128) ** 2 < 40**2).astype(np.uint8)
    with Dataset.create(out, "big", 1) as ds:
        sample = ds.add_empty_sample("big", (z, 2048, 2048))
        image = sample.create_layer("image", np.uint8)
        image.attrs["norm_min"], image.attrs["norm_max"] = 0.0, 255.0
        label = sample.create_layer(label_name(0), np.uint8)
        for z0 in range(0, z, 8):
            z1 = min(z, z0 + 8)
            image[z0:z1] = rng.integers(0, 256, (z1 - z0, 2048, 2048), np.uint8)
            label[z0:z1] = balls[None] if (z0 // 64) % 2 == 0 else 0
    return out


def model_and_info(args):
    from deepscem.config import UNetConfig
    from deepscem.models.storage import model_info_from
    from deepscem.models.unet import build_unet

    config = UNetConfig(filters=args.filters, depth=args.depth)
    model = build_unet(config)
    return model, model_info_from(model, config)


def train_config(args, steps: int, focus: float | None = None):
    from deepscem.config import TrainConfig

    d = TrainConfig()
    return TrainConfig(batch_size=args.batch, micro_batch_size=args.micro or None,
                       patch=(1, args.patch, args.patch), steps_per_epoch=steps,
                       epochs=1, validation_steps=0, label_focus=d.label_focus if focus is None else focus,
                       mixed_precision=args.mixed_precision, seed=0, reduce_lr=False)


def rate(times: list[float], warmup: int, batch: int) -> float:
    """Patches/s between the end of batch ``warmup`` and the end of the last batch."""
    if len(times) <= warmup + 1:
        return float("nan")
    return (len(times) - 1 - warmup) * batch / (times[-1] - times[warmup])


def throughput(args):
    """(patches/s of train() from HDF5, patches/s of plain fit on in-memory tensors, patches per
    pass, the model), each timed inside one fit() after the warm-up steps."""
    import keras

    from deepscem.training.trainer import train

    path = lucchi_dataset(args.data, args.tmp / "lucchi-train.hdf5")
    model, info = model_and_info(args)
    steps = args.warmup + args.steps
    times: list[float] = []

    def rec(p):
        if p.stage == "train":
            times.append(time.perf_counter())

    from deepscem.config import micro_batch

    config = train_config(args, steps)
    micro = micro_batch(config)
    passes = args.batch // micro
    train(model, info, [path], None, config, progress=rec, workers=args.workers)
    hdf5 = rate(times, args.warmup, args.batch)  # one report per step of args.batch patches

    class Random(keras.utils.PyDataset):
        """Ready-made tensors: what the same fit reaches when feeding costs nothing."""

        def __init__(self):
            super().__init__()
            r = np.random.default_rng(0)
            self.x = r.random((micro, args.patch, args.patch, 1), np.float32)
            self.y = (r.random((micro, args.patch, args.patch, 1)) > 0.9).astype(np.float32)

        def __len__(self):
            return steps * passes

        def __getitem__(self, i):
            return self.x, self.y

    mem: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if (batch + 1) % passes == 0:  # a step (weight update) ends every `passes` batches
                mem.append(time.perf_counter())

    same = model  # the trainer compiled this model in place (float32) ...
    if args.mixed_precision:  # ... or a bfloat16 clone of it, so compile the same clone here
        from deepscem.config import TrainConfig
        from deepscem.models.losses import get_loss
        from deepscem.training import precision
        from deepscem.training.batchnorm import fuse_batchnorm

        same = precision.with_policy(model, precision.MIXED)
        fuse_batchnorm(same)  # as the trainer does (in place above, for float32)
        same.compile(optimizer=keras.optimizers.Adam(1e-3, gradient_accumulation_steps=passes if passes > 1
                                                     else None), loss=get_loss(TrainConfig().loss, "sigmoid"))
    same.fit(Random(), epochs=1, verbose=0, callbacks=[Timer()])  # same model and step
    memory = rate(mem, args.warmup, args.batch)
    return hdf5, memory, micro, model


def training_flops_per_patch(model, patch: int) -> float:
    """Floating-point operations of one training step per patch (forward + backward ~ 3 x the
    forward's multiply-adds x 2), counted from the convolution kernels and their output sizes
    on a ``patch``² input (BatchNorm, activations and the optimizer are left out: < 5 %)."""
    import keras

    channels = model.inputs[0].shape[-1]
    fixed = keras.models.clone_model(model, input_tensors=keras.Input((patch, patch, channels)))
    forward = 0.0
    for layer in fixed.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        if isinstance(layer, (keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)):
            positions = np.prod(layer.input.shape[1:-1])  # each input pixel scatters a kernel
        else:
            positions = np.prod(layer.output.shape[1:-1])
        forward += 2.0 * float(np.prod(kernel.shape)) * float(positions)
    return 3.0 * forward


class BusyProcess:
    """A second process spinning on one core (the "busy machine" case), started and stopped
    around a measurement."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def side_by_side(args) -> None:
    """Throughput of train() and of plain fit, as the machine is and with one more busy process,
    printed as one table (patches/s and GFLOP/s)."""
    rows = []
    flops = None
    for label, busy in (("as found", False), ("+1 busy process", True)):
        if busy and args.no_busy:
            continue
        load = os.getloadavg()[0]
        if busy:
            with BusyProcess():
                time.sleep(1.0)
                hdf5, memory, micro, model = throughput(args)
        else:
            hdf5, memory, micro, model = throughput(args)
        flops = flops or training_flops_per_patch(model, args.patch)
        rows.append((label, load, hdf5, memory))
    print(f"model: 2D U-Net filters {args.filters} depth {args.depth}, {model.count_params():,} parameters, "
          f"{flops / 3 / 1e9:.2f} GFLOP per {args.patch}² forward pass ({flops / 1e9:.2f} per training "
          f"patch); batch {args.batch} in passes of {micro}; {args.steps} timed steps after {args.warmup}; "
          f"threads: TF intra-op {args.intra or 'default'}, inter-op {args.inter or 'default'}, batch "
          f"workers {args.workers} (niceness +{_thread_nice()})")
    print("| machine | load at start | train() patches/s | GFLOP/s | plain fit patches/s | GFLOP/s | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, load, hdf5, memory in rows:
        print(f"| {label} | {load:.1f} | {hdf5:.2f} | {hdf5 * flops / 1e9:.1f} | {memory:.2f} | "
              f"{memory * flops / 1e9:.1f} | {hdf5 / memory:.3f} |")


def _thread_nice() -> int:
    import deepscem.training.trainer as trainer

    return trainer.BATCH_THREAD_NICE


def sampler_alone(args, path: Path) -> None:
    """Patches/s train()'s batches (label focus + rotate/flip) are built at by 1, 2, 4... threads
    with nothing else running, from the HDF5 file (a CPU's training) and held in memory (a
    GPU's): the headroom a faster device could use before the data pipeline limits it. h5py
    holds the GIL while it reads, so threads overlap only the NumPy work."""
    from concurrent.futures import ThreadPoolExecutor

    from deepscem.config import TrainConfig
    from deepscem.training.augment import Augmentation
    from deepscem.training.sampler import PatchSampler
    from deepscem.training.sequence import PatchSequence

    for held in (False, True):
        defaults = TrainConfig()
        with PatchSampler([path], (1, args.patch, args.patch), label_focus=defaults.label_focus,
                          normalization=defaults.normalization) as sampler:
            if held:
                sampler.hold_in_memory(float("inf"))
            sampler.build_index()
            seq = PatchSequence(sampler, args.batch, 10**6, dim=2,
                                augmentation=Augmentation(rotate=True, flip=True), seed=0)
            seq[0]
            rates = []
            for threads in args.sampler_threads:
                n = max(60, 16 * threads)
                with ThreadPoolExecutor(threads) as pool:
                    t = time.perf_counter()
                    list(pool.map(seq.__getitem__, range(1, n + 1)))
                    rates.append(f"{threads} thread{'s' if threads > 1 else ''} "
                                 f"{n * args.batch / (time.perf_counter() - t):.0f}")
            print(f"patches/s of batches built alone {'held in memory' if held else 'from HDF5'} (batch "
                  f"{args.batch} of {args.patch}², focus + rotate/flip): " + ", ".join(rates))


def rss_child(path: Path, args) -> None:
    from deepscem.training.trainer import train

    model, info = model_and_info(args)
    before = peak_rss_mb()
    t = time.perf_counter()
    result = train(model, info, [path], None, train_config(args, args.rss_steps, focus=0.5))
    print(json.dumps({"peak_rss_mb": peak_rss_mb(), "before_train_mb": before, "steps": result.steps_done,
                      "seconds": time.perf_counter() - t}))


def rss(args) -> None:
    what = "lucchi-pp (54 MB image)" if args.data else "a generated stand-in (130 MB image)"
    files = {what: lucchi_dataset(args.data, args.tmp / "lucchi-train.hdf5")}
    if args.big_gib > 0:
        t = time.perf_counter()
        big = big_dataset(args.tmp / "big.hdf5", args.big_gib)
        size = big.stat().st_size / 2**30
        print(f"generated {big.name}: {size:.2f} GiB on disk in {time.perf_counter() - t:.0f} s")
        files[f"generated ({size:.2f} GiB file)"] = big
    for what, path in files.items():
        cmd = [sys.executable, __file__, "--rss-child", str(path), "--rss-steps", str(args.rss_steps),
               "--batch", str(args.batch), "--patch", str(args.patch), "--filters", str(args.filters),
               "--depth", str(args.depth), "--micro", str(args.micro)] + (
                   ["--mixed-precision"] if args.mixed_precision else [])
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode:
            print(f"{what}: child failed\n{out.stderr[-2000:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"peak RSS training {r['steps']} steps from {what}: {r['peak_rss_mb']:.0f} MB "
              f"(after imports and model build: {r['before_train_mb']:.0f} MB; {r['seconds']:.0f} s)")


def lucchi_3d(args) -> None:
    """A short 3D training on lucchi-pp for ``--lucchi-3d`` minutes: loss curve and test IoU."""
    import threading

    from deepscem.config import PredictConfig, TrainConfig, UNetConfig
    from deepscem.evaluation import evaluate
    from deepscem.inference.predictor import predict_dataset
    from deepscem.models.storage import model_info_from
    from deepscem.models.unet import build_unet
    from deepscem.progress import CancelToken
    from deepscem.training.trainer import train

    train_ds = lucchi_dataset(args.data, args.tmp / "lucchi-train.hdf5")
    test_ds = args.tmp / "lucchi-test.hdf5"
    from deepscem.dataset import Dataset

    if not test_ds.exists():
        with Dataset.create(test_ds, "lucchi-pp test", 1) as ds:
            ds.add_sample("test", args.data / "lucchi-pp" / "test_image.tif",
                          [args.data / "lucchi-pp" / "test_label.tif"])
    unet = UNetConfig(dim=3, filters=8, depth=3, normalization=args.normalization_3d)
    model = build_unet(unet)
    config = TrainConfig(batch_size=2, patch=(16, 96, 96), steps_per_epoch=16, epochs=10_000,
                         validation_steps=4, seed=args.seed_3d)
    print(f"3D: {unet}, {model.count_params():,} parameters; {config}")
    token = CancelToken()
    timer = threading.Timer(args.lucchi_3d * 60, token.cancel)
    timer.start()
    t = time.perf_counter()
    try:
        result = train(model, model_info_from(model, unet), [train_ds], [train_ds], config, cancel=token)
    finally:
        timer.cancel()
    t_train = time.perf_counter() - t
    losses = ", ".join(f"{v:.3f}" for v in result.history.get("loss", []))
    val = ", ".join(f"{v:.3f}" for v in result.history.get("val_loss", []))
    print(f"trained {result.steps_done} steps in {t_train:.0f} s ({result.stopped_reason}), best epoch "
          f"{result.best_epoch}\nloss per epoch: {losses}\nval_loss per epoch: {val}")
    t = time.perf_counter()
    pred = predict_dataset(result.model, result.info, test_ds, args.tmp / "pred3d.hdf5", PredictConfig(),
                           overwrite=True)
    overall = evaluate(test_ds, pred, threshold=0.5, objects=False).overall[0].as_dict()
    print(f"test foreground IoU {overall['iou']:.4f}, Dice {overall['f1']:.4f} "
          f"(prediction {time.perf_counter() - t:.0f} s)")


def main() -> None:
    from deepscem.config import BATCH_WORKERS, DEFAULT_BATCH, steps_for

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding lucchi-pp/")
    p.add_argument("--work", type=Path, default=None,
                   help="folder for the generated files, kept and reused (default: a temporary one)")
    p.add_argument("--steps", type=int, default=None,
                   help="timed steps per source (default: 96 patches, 48 steps of the default batch)")
    p.add_argument("--warmup", type=int, default=3, help="untimed first steps per source")
    p.add_argument("--batch", type=int, default=None, help="patches per step (default: train()'s, 2)")
    p.add_argument("--micro", type=int, default=0,
                   help="patches per pass (gradient accumulation); 0: train()'s default")
    p.add_argument("--patch", type=int, default=256)
    p.add_argument("--filters", type=int, default=16)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--workers", type=int, default=BATCH_WORKERS, help="batch-building threads (as train())")
    p.add_argument("--mixed-precision", action="store_true")
    p.add_argument("--big-gib", type=float, default=2.05, help="size of the generated file (0: skip)")
    p.add_argument("--rss-steps", type=int, default=6)
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-rss", action="store_true")
    p.add_argument("--no-busy", action="store_true", help="skip the run with a second busy process")
    p.add_argument("--intra", type=int, default=0, help="TensorFlow intra-op threads (0: TF's default)")
    p.add_argument("--inter", type=int, default=0, help="TensorFlow inter-op threads (0: TF's default)")
    p.add_argument("--sampler-alone", action="store_true", help="also time batch building alone")
    p.add_argument("--sampler-threads", default="1",
                   help="with --sampler-alone: thread counts to time it with, e.g. 1,2,4,8")
    p.add_argument("--synthetic", action="store_true",
                   help="a generated 165 x 768 x 1024 stand-in instead of lucchi-pp (no ../shared)")
    p.add_argument("--thread-nice", type=int, default=None,
                   help="niceness added to train()'s batch-building threads (default: "
                        "deepscem.config.BATCH_THREAD_NICE)")
    p.add_argument("--lucchi-3d", type=float, metavar="MINUTES",
                   help="only: a short 3D U-Net training on lucchi-pp, then its test IoU")
    p.add_argument("--normalization-3d", choices=("batchnorm", "instance", "none"), default="batchnorm",
                   help="the --lucchi-3d model's normalisation after each convolution")
    p.add_argument("--seed-3d", type=int, default=0, help="the --lucchi-3d run's seed")
    p.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    args.batch = args.batch or DEFAULT_BATCH
    args.steps = args.steps or steps_for(96, args.batch)
    args.sampler_threads = [int(t) for t in args.sampler_threads.split(",")]
    if args.synthetic:
        args.data = None
    if args.intra or args.inter:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.intra)
        tf.config.threading.set_inter_op_parallelism_threads(args.inter)
    if args.thread_nice is not None:
        import deepscem.training.trainer as trainer

        trainer.BATCH_THREAD_NICE = args.thread_nice
    if args.rss_child:
        rss_child(args.rss_child, args)
        return
    from deepscem.devices import cpu_name, describe_device

    print(f"device: {describe_device()} ({cpu_name()}); load average {os.getloadavg()[0]:.1f} "
          "(shared machine)")
    with tempfile.TemporaryDirectory() as tmp:
        args.tmp = args.work or Path(tmp)
        args.tmp.mkdir(parents=True, exist_ok=True)
        if args.lucchi_3d:
            lucchi_3d(args)
            return
        if not args.skip_throughput:
            side_by_side(args)
        if args.sampler_alone:
            sampler_alone(args, lucchi_dataset(args.data, args.tmp / "lucchi-train.hdf5"))
        if not args.skip_rss:
            rss(args)


if __name__ == "__main__":
    main()
