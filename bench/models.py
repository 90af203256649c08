"""Benchmark the default U-Nets: parameter count, CPU forward throughput, peak memory.

Usage::

    python bench/models.py                       # default 2D and 3D models, TensorFlow backend
    python bench/models.py --backend torch       # the same under Keras' PyTorch backend
    python bench/models.py --bn-momentum         # also: BatchNorm train/inference gap after a
                                                 # short training, momentum 0.99 vs 0.9

Each case runs in its own process (fresh peak-RSS counter, backend chosen before Keras is
imported). Throughput = voxels of the tile / seconds per forward pass (predict_on_batch,
after one warm-up call), median of the repeats. Prints numbers, never pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = [  # (label, dim, tile (spatial), batch)
    ("2D default, 512x512, batch 1", 2, (512, 512), 1),
    ("2D default, 512x512, batch 4", 2, (512, 512), 4),
    ("3D default, 64x128x128, batch 1", 3, (64, 128, 128), 1),
]


def run_case(dim: int, tile: tuple[int, ...], batch: int, repeats: int) -> dict:
    import numpy as np

    from deepscem.config import UNetConfig
    from deepscem.models.unet import build_unet

    model = build_unet(UNetConfig(dim=dim))
    x = np.random.default_rng(0).random((batch, *tile, 1), dtype=np.float32)
    model.predict_on_batch(x)  # warm-up: graph tracing / kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_on_batch(x)
        times.append(time.perf_counter() - start)
    seconds = sorted(times)[len(times) // 2]
    import keras

    return {
        "backend": keras.backend.backend(),
        "parameters": int(model.count_params()),
        "seconds_per_batch": seconds,
        "voxels_per_second": batch * float(np.prod(tile)) / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_bn_gap(momentum: float, steps: int) -> dict:
    """Train a small 2D U-Net on synthetic blobs for ``steps`` steps, then compare the
    network's output in inference mode (moving BN statistics) with training mode (batch
    statistics) on a held-out batch: mean |difference|, before and after
    ``recompute_batchnorm``."""
    import keras
    import numpy as np

    from deepscem.config import UNetConfig
    from deepscem.models.losses import get_loss
    from deepscem.models.unet import build_unet
    from deepscem.training.batchnorm import recompute_batchnorm

    rng = np.random.default_rng(0)

    def batch(n=8, size=64):
        yy, xx = np.mgrid[:size, :size]
        xs, ys = np.empty((n, size, size, 1), np.float32), np.empty((n, size, size, 1), np.float32)
        for i in range(n):
            mask = np.zeros((size, size), bool)
            for _ in range(3):
                cy, cx, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(4, 12)
                mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
            xs[i, ..., 0] = 0.3 + 0.4 * mask + rng.normal(0, 0.1, mask.shape)
            ys[i, ..., 0] = mask
        return xs, ys

    model = build_unet(UNetConfig(filters=8, depth=3), bn_momentum=momentum)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=get_loss("dice", "sigmoid"))
    for _ in range(steps):
        model.train_on_batch(*batch())
    x, y = batch()

    def gap():
        infer = keras.ops.convert_to_numpy(model(x, training=False))
        train = keras.ops.convert_to_numpy(model(x, training=True))
        return float(np.abs(infer - train).mean()), float(((infer > 0.5) == (y > 0.5)).mean())

    before, acc_before = gap()  # note: the training-mode call nudges the statistics once more
    recompute_batchnorm(model, (batch()[0] for _ in range(8)))
    after, acc_after = gap()
    return {"momentum": momentum, "steps": steps, "gap": before, "accuracy": acc_before,
            "gap_after_recompute": after, "accuracy_after_recompute": acc_after}


def spawn(args: list[str], backend: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, __file__, "--child", *args], env=env, cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--backend", default="tensorflow", choices=("tensorflow", "torch"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bn-momentum", action="store_true")
    parser.add_argument("--bn-steps", type=int, default=300)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "forward":
            dim, batch, repeats, *tile = (int(v) for v in rest)
            result = run_case(dim, tuple(tile), batch, repeats)
        else:
            result = run_bn_gap(float(rest[0]), int(rest[1]))
        print(json.dumps(result))
        return

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), "
          f"backend {args.backend}, median of {args.repeats}")
    print(f"{'case':34s} {'params':>10s} {'s/batch':>8s} {'Mvox/s':>8s} {'peak RSS MB':>12s}")
    for label, dim, tile, batch in CASES:
        r = spawn(["forward", str(dim), str(batch), str(args.repeats), *map(str, tile)], args.backend)
        if "error" in r:
            print(f"{label:34s} error: {r['error']}")
            continue
        print(f"{label:34s} {r['parameters']:>10,d} {r['seconds_per_batch']:>8.2f} "
              f"{r['voxels_per_second'] / 1e6:>8.2f} {r['peak_rss_mb']:>12.0f}")
    if args.bn_momentum:
        print(f"\n# BatchNorm: mean |inference - training output| after {args.bn_steps} steps "
              "(2D, f8, depth 3, batch 8 of 64x64), and voxel accuracy in inference mode")
        for momentum in (0.99, 0.9):
            r = spawn(["bn", str(momentum), str(args.bn_steps)], args.backend)
            if "error" in r:
                print(f"momentum {momentum}: error: {r['error']}")
                continue
            print(f"momentum {momentum:<5}: gap {r['gap']:.4f} (accuracy {r['accuracy']:.3f}); "
                  f"after recompute_batchnorm: gap {r['gap_after_recompute']:.4f} "
                  f"(accuracy {r['accuracy_after_recompute']:.3f})")


if __name__ == "__main__":
    main()
