"""Sparse annotation on Lucchi++: test foreground IoU when only N evenly spaced training slices
are labelled (N = 1, 2, 4, 8, 16 and all 165), and for N = 8 the naive way (the other slices
taught as background), side by side with the same time budget per run; draws the curve.

    python bench/sparse.py --minutes 15                       # the full comparison (~2 h CPU)
    python bench/sparse.py --minutes 2 --test-slices 32       # a reduced run on a busy machine

Every run trains the default 2D U-Net (``UNetConfig()``, ``TrainConfig()`` defaults, seed 0,
cosine LR decay over the budget, no validation volume) from scratch on the Lucchi++ training
volume, predicts the test volume (or its first ``--test-slices`` slices) and scores it at
threshold 0.5. The partial runs mark N slices annotated (``Sample.set_annotated_slices``, so the
other slices are unknown); the naive run blanks the labels of the other slices and marks
everything annotated, which is what "label a few slices" meant before partial labels.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from lucchi import DEFAULT_DATA, build_datasets  # noqa: E402

PLOT = ROOT / "docs" / "img" / "sparse_annotation.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, required=True, help="training budget per run")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, help="folder for datasets/predictions (default: temporary)")
    parser.add_argument("--slices", default="1,2,4,8,16,all",
                        help="numbers of evenly spaced annotated slices (default 1,2,4,8,16,all)")
    parser.add_argument("--naive", type=int, default=8,
                        help="N of the naive run (other slices taught as background); 0: none")
    parser.add_argument("--test-slices", type=int, help="score only the first N test slices")
    parser.add_argument("--steps-per-epoch", type=int, default=32)
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="what the budget counts: wall time or the process's CPU time (all "
                             "threads; the same computation per run on a shared machine)")
    parser.add_argument("--plot", type=Path, default=PLOT, help=f"PNG to write (default {PLOT})")
    args = parser.parse_args()
    if not (args.data / "train_image.tif").is_file():
        sys.exit(f"error: no Lucchi++ TIFFs in {args.data}; give --data")
    with tempfile.TemporaryDirectory(prefix="deepscem-sparse-") as tmp:
        run(args, args.work or Path(tmp))


def runs_of(args) -> list[tuple[str, int | None, bool]]:
    """(label, N or None for all, naive) in the order they run."""
    out = []
    for text in args.slices.split(","):
        n = None if text.strip() == "all" else int(text)
        out.append((f"N={text.strip()}", n, False))
    if args.naive:
        out.append((f"N={args.naive} naive", args.naive, True))
    return out


def prepare(train_ds: Path, work: Path, n: int | None, naive: bool) -> Path:
    """A copy of the training file whose annotation says what run (n, naive) may learn from."""
    from deepscem.dataset import Dataset
    from deepscem.dataset.annotation import evenly_spaced

    path = work / ("train_naive.hdf5" if naive else "train_sparse.hdf5")
    if not path.exists():
        shutil.copyfile(train_ds, path)
    with Dataset.open(path, "r+") as ds:
        sample = ds.sample(ds.sample_names()[0])
        if n is None:
            sample.set_all_annotated()
            return path
        keep = set(evenly_spaced(n, sample.shape[0]))
        if not naive:
            sample.set_annotated_slices(keep)
            return path
        label = sample.layer("label_0000")  # the naive way: the other slices say "background"
        for z in range(sample.shape[0]):
            if z not in keep and label[z].any():
                label[z] = 0
    return path


def train_and_score(args, train_path: Path, test_ds: Path, work: Path, key: str) -> dict:
    import keras

    from deepscem.config import PredictConfig, TrainConfig, UNetConfig
    from deepscem.evaluation import evaluate
    from deepscem.inference.predictor import predict_dataset
    from deepscem.models.storage import model_info_from
    from deepscem.models.unet import build_unet
    from deepscem.training.trainer import train

    keras.utils.set_random_seed(0)  # the same initial weights for every run
    unet = UNetConfig()
    model = build_unet(unet)
    info = model_info_from(model, unet)
    config = TrainConfig(steps_per_epoch=args.steps_per_epoch, epochs=10_000, validation_steps=0,
                         mixed_precision=args.mixed_precision, seed=0,
                         time_limit_minutes=args.minutes, lr_schedule="cosine",
                         budget_clock=args.clock)
    t0 = time.perf_counter()
    result = train(model, info, [train_path], None, config)
    t_train = time.perf_counter() - t0
    pred = predict_dataset(result.model, result.info, test_ds, work / f"pred_{key}.hdf5",
                           PredictConfig(), overwrite=True)
    overall = evaluate(test_ds, pred, threshold=0.5, objects=False).overall[0].as_dict()
    return {"iou": overall["iou"], "f1": overall["f1"], "steps": result.steps_done,
            "train_s": t_train}


def run(args, work: Path) -> None:
    from deepscem.devices import describe_device

    work.mkdir(parents=True, exist_ok=True)
    print(f"device: {describe_device()}; {os.cpu_count()} CPU cores, load average "
          f"{os.getloadavg()[0]:.1f} at start; budget {args.minutes:g} {args.clock} min per run", flush=True)
    train_ds, test_ds = build_datasets(args.data, work, args.test_slices)
    results = {}
    for label, n, naive in runs_of(args):
        path = prepare(train_ds, work, n, naive)
        key = label.replace("=", "").replace(" ", "_")
        results[label] = train_and_score(args, path, test_ds, work, key)
        r = results[label]
        print(f"{label:>12}: IoU {r['iou']:.4f}  Dice {r['f1']:.4f}  ({r['steps']} steps in "
              f"{r['train_s']:.0f} s; load {os.getloadavg()[0]:.1f})", flush=True)
    report(results, args)


def report(results: dict, args) -> None:
    full = results.get("N=all", {}).get("iou")
    print("\n| annotated slices | test IoU | Dice | of all-slices IoU | steps |")
    print("|---|---:|---:|---:|---:|")
    for label, r in results.items():
        ratio = f"{r['iou'] / full:.2f}" if full else ""
        print(f"| {label[2:]} | {r['iou']:.4f} | {r['f1']:.4f} | {ratio} | {r['steps']} |")
    plot(results, args)


def plot(results: dict, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = [(165 if label == "N=all" else int(label[2:]), r["iou"])
             for label, r in results.items() if "naive" not in label]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    ax.plot([n for n, _ in curve], [v for _, v in curve], "o-", label="partial labels (others unknown)")
    for label, r in results.items():
        if "naive" in label:
            ax.plot([args.naive], [r["iou"]], "rx", markersize=10,
                    label=f"naive: other slices taught as background (N={args.naive})")
    ax.set_xscale("log", base=2)
    ax.set_xticks([n for n, _ in curve], [str(n) for n, _ in curve])
    ax.set_xlabel("evenly spaced annotated training slices (of 165)")
    ax.set_ylabel("test foreground IoU")
    test = f"first {args.test_slices} test slices" if args.test_slices else "165 test slices"
    steps = [r["steps"] for r in results.values()]
    clock = " CPU" if args.clock == "cpu" else ""
    ax.set_title(f"Lucchi++, {args.minutes:g}{clock} min training per run ({min(steps)}-{max(steps)} steps), "
                 f"{test}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
