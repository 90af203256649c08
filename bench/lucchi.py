"""Lucchi++ end to end: build the datasets, train the default 2D U-Net for a time budget,
predict the test volume, evaluate it; prints foreground IoU / Dice and wall times.

    python bench/lucchi.py --minutes 3                  # a short smoke run
    python bench/lucchi.py --minutes 15 --mixed-precision
    python bench/lucchi.py --data /path/to/lucchi-pp --work /tmp/lucchi --minutes 15

Data: ``../shared/data/lucchi-pp`` (or ``--data``): train/test image and label TIFFs,
(165, 512, 640) uint8, labels 0/255. Training runs until the budget is spent (the trainer is
cancelled cooperatively after the current batch; it keeps the best weights so far), then the
whole test volume is predicted with the default tiling and scored at threshold 0.5. Prints
numbers only: the comparison with ``../shared/baselines/`` lives in bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = Path(os.environ.get("DEEPSCEM_SHARED_DATA", ROOT.parent / "shared" / "data")) \
    / "lucchi-pp"


def build_datasets(data: Path, work: Path, test_slices: int | None) -> tuple[Path, Path]:
    """train.hdf5 and test.hdf5 in ``work`` (reused when already there); the test volume
    limited to its first ``test_slices`` slices when given (quick runs)."""
    import tifffile

    from deepscem.dataset import Dataset

    paths = []
    for split in ("train", "test"):
        n = test_slices if split == "test" else None
        path = work / (f"lucchi_{split}.hdf5" if not n else f"lucchi_{split}_{n}.hdf5")
        if not path.exists():
            tmp = path.with_suffix(".partial")
            image, label = data / f"{split}_image.tif", data / f"{split}_label.tif"
            if n:
                image = tifffile.imread(image, key=range(n))
                label = (tifffile.imread(label, key=range(n)) > 0).astype("uint8")
            with Dataset.create(tmp, f"lucchi {split}", 1, overwrite=True) as ds:
                ds.set_label_aliases(["mitochondria"])
                ds.add_sample(split, image, [label])
            tmp.rename(path)
        paths.append(path)
    return paths[0], paths[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, required=True, help="training time budget")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, help="folder for datasets/model/prediction "
                        "(default: a temporary folder)")
    parser.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None,
                        help="train in bfloat16 mixed precision (default: as train does, on where "
                             "the device computes it fast)")
    parser.add_argument("--batch-size", type=int, help="training batch (default: TrainConfig)")
    parser.add_argument("--micro-batch", type=int,
                        help="patches per pass (default: TrainConfig's auto, 2 on a CPU)")
    parser.add_argument("--validation-steps", type=int, default=0,
                        help="validation batches per epoch, drawn from the training volume "
                             "(default 0: Lucchi++ has no separate validation volume)")
    parser.add_argument("--steps-per-epoch", type=int, default=32)
    parser.add_argument("--block", choices=("residual", "vgg"), help="U-Net block (default: UNetConfig)")
    parser.add_argument("--blocks-per-level", type=int, help="conv blocks per level (default: UNetConfig)")
    parser.add_argument("--lr-schedule", default="cosine", choices=("cosine", "plateau", "constant"),
                        help="cosine (default) decays the LR to ~0 when the budget runs out")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation")
    parser.add_argument("--z-smooth", type=float, default=0.0, metavar="SIGMA",
                        help="Gaussian smoothing of the predictions along Z before the threshold "
                             "(PredictConfig.z_smooth; default off)")
    parser.add_argument("--test-slices", type=int, help="predict and score only the first N test "
                        "slices (quick runs on a busy machine; default: all 165)")
    args = parser.parse_args()
    if not (args.data / "train_image.tif").is_file():
        sys.exit(f"error: no Lucchi++ TIFFs in {args.data}; give --data")
    with tempfile.TemporaryDirectory(prefix="deepscem-lucchi-") as tmp:
        run(args, args.work or Path(tmp))


def run(args: argparse.Namespace, work: Path) -> None:
    import dataclasses

    from deepscem.config import PredictConfig, TrainConfig, UNetConfig
    from deepscem.devices import describe_device
    from deepscem.evaluation import evaluate
    from deepscem.inference.predictor import predict_dataset
    from deepscem.models.storage import model_info_from, save_model
    from deepscem.models.unet import build_unet
    from deepscem.training.trainer import train

    work.mkdir(parents=True, exist_ok=True)
    print(f"device: {describe_device()}; {os.cpu_count()} CPU cores, load average "
          f"{os.getloadavg()[0]:.1f} at start")
    t0 = time.perf_counter()
    train_ds, test_ds = build_datasets(args.data, work, args.test_slices)
    t_build = time.perf_counter() - t0

    unet = UNetConfig()  # the default 2D U-Net, unless --block / --blocks-per-level change it
    if args.block:
        unet = dataclasses.replace(unet, block=args.block)
    if args.blocks_per_level:
        unet = dataclasses.replace(unet, blocks_per_level=args.blocks_per_level)
    model = build_unet(unet)
    info = model_info_from(model, unet)
    config = TrainConfig(steps_per_epoch=args.steps_per_epoch, epochs=10_000,
                         validation_steps=args.validation_steps,
                         mixed_precision=args.mixed_precision, seed=0,
                         time_limit_minutes=args.minutes, lr_schedule=args.lr_schedule)
    if args.batch_size:
        config = dataclasses.replace(config, batch_size=args.batch_size)
    if args.micro_batch:
        config = dataclasses.replace(config, micro_batch_size=args.micro_batch)
    print(f"model: U-Net {unet}, {model.count_params():,} parameters")
    from deepscem.config import micro_batch

    print(f"training: {config}; passes of {micro_batch(config)} patches")
    t0 = time.perf_counter()
    result = train(model, info, [train_ds], [train_ds] if args.validation_steps else None,
                   config, log_path=work / "lucchi_log.csv")
    t_train = time.perf_counter() - t0
    save_model(result.model, work / "lucchi.keras", result.info)
    patches = result.steps_done * config.batch_size
    print(f"trained {result.steps_done} steps ({patches} patches, {patches / t_train:.1f} "
          f"patches/s) in {t_train:.0f} s; stopped: {result.stopped_reason}; best epoch "
          f"{result.best_epoch}")

    t0 = time.perf_counter()
    pred = predict_dataset(result.model, result.info, test_ds, work / "lucchi_pred.hdf5",
                           PredictConfig(tta=args.tta, z_smooth=args.z_smooth), overwrite=True)
    t_pred = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = evaluate(test_ds, pred, threshold=0.5, objects=True)
    t_eval = time.perf_counter() - t0
    overall = report.overall[0].as_dict()
    voxels = overall["voxels"]
    print(f"\nforeground IoU {overall['iou']:.4f}  Dice {overall['f1']:.4f}  (threshold 0.5; "
          f"precision {overall['precision']:.4f}, recall {overall['recall']:.4f}; objects "
          f"{overall['reference_objects']} reference / {overall['segmentation_objects']} "
          f"predicted, object F1 {overall['object_f1']:.3f})")
    print(f"wall times: datasets {t_build:.0f} s, training {t_train:.0f} s, prediction "
          f"{t_pred:.0f} s ({voxels / t_pred / 1e6:.2f} Mvox/s{', TTA' if args.tta else ''}), "
          f"evaluation {t_eval:.1f} s")


if __name__ == "__main__":
    main()
