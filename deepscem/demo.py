"""The demo: from nothing to a segmented, scored EM volume in a few minutes.

``run.py demo`` builds a training and a test dataset (from the seeded EM-like volumes of
:mod:`deepscem.dataset.synthetic`, or from a real image/label pair such as lucchi-pp), trains a
small 2D U-Net within a fixed time budget, predicts the test volume, evaluates it against
its labels and writes a PNG overlay of one slice. Every step is the same core call the
CLI and GUI use; nothing here is demo-only logic except choosing the inputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepscem import progress as prog
from deepscem.config import PredictConfig, TrainConfig, UNetConfig
from deepscem.errors import InputFileError
from deepscem.training.stop_reasons import StopReason

#: Files a --data folder must hold (the lucchi-pp layout).
DATA_FILES = ("train_image.tif", "train_label.tif", "test_image.tif", "test_label.tif")

DEMO_MODEL = UNetConfig(dim=2, block="residual", filters=16, blocks_per_level=1, depth=4, outputs=1,
                        activation="sigmoid", name="demo-unet")


def demo_train_config(patch: int = 128, minutes: float = 2.5) -> TrainConfig:
    """Settings for a short CPU run: Dice+CE loss, flips/rot90, half the patches on mitochondria,
    a cosine LR decay over the time budget, the best epoch kept."""
    return TrainConfig(loss="dice+crossentropy", batch_size=8, patch=(1, patch, patch), steps_per_epoch=25,
                       epochs=1000, validation_steps=4, learning_rate=2e-3, keep_best=True,
                       lr_schedule="cosine", time_limit_minutes=minutes, rotate=True, flip=True,
                       label_focus=0.5, seed=0)


@dataclass
class DemoResult:
    """What the demo produced: files, scores (foreground F1/IoU...) and wall times (s)."""

    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    scores: dict[str, Any] = field(default_factory=dict)
    times: dict[str, float] = field(default_factory=dict)
    table: str = ""
    train_message: str = ""


def prepare_inputs(out_dir: Path, data_dir: Path | None, shape: tuple[int, int, int]) -> dict[str, Path]:
    """The four TIFFs of the demo: from ``data_dir`` (checked) or generated into ``out_dir``."""
    if data_dir is not None:
        missing = [n for n in DATA_FILES if not (data_dir / n).is_file()]
        if missing:
            raise InputFileError(f"{data_dir} lacks {', '.join(missing)}: --data needs a folder with "
                                 f"{', '.join(DATA_FILES)} (the lucchi-pp layout)")
        return {n: data_dir / n for n in DATA_FILES}
    from deepscem.dataset.imageio import write_tiff
    from deepscem.dataset.synthetic import em_like_volume

    files = {}
    data = out_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    for seed, part in ((0, "train"), (1, "test")):
        image, label = em_like_volume(shape, seed=seed)
        files[f"{part}_image.tif"] = data / f"{part}_image.tif"
        files[f"{part}_label.tif"] = data / f"{part}_label.tif"
        write_tiff(files[f"{part}_image.tif"], image)
        write_tiff(files[f"{part}_label.tif"], label * 255, compression="zlib")
    return files


def run_demo(out_dir: str | Path, *, data_dir: str | Path | None = None, minutes: float = 2.5,
             shape: tuple[int, int, int] = (24, 256, 256), patch: int = 128,
             progress: prog.ProgressCallback | None = None,
             cancel: prog.CancelToken | None = None) -> DemoResult:
    """Build datasets, train for ``minutes``, predict, evaluate and draw an overlay into ``out_dir``.

    The training budget is a wall-clock limit: training stops after the batch that crosses
    it and keeps the best weights (on validation loss). ``shape`` is the generated volume's
    (Z, Y, X) when no ``data_dir`` is given.

    Long because it is the demo's script: the steps in the order a user runs them, each timed.
    """
    from deepscem.dataset import Dataset
    from deepscem.evaluation.report import evaluate
    from deepscem.inference.predictor import predict_dataset
    from deepscem.models.storage import model_info_from, save_model
    from deepscem.models.unet import build_unet
    from deepscem.training.trainer import train

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out)
    t0 = time.perf_counter()
    inputs = prepare_inputs(out, Path(data_dir) if data_dir else None, shape)
    prog.check(cancel)
    for part in ("train", "test"):
        path = out / f"{part}.hdf5"
        with Dataset.create(path, f"demo-{part}", 1, overwrite=True) as ds:
            ds.set_label_aliases(["mitochondria"])
            ds.add_sample(part, inputs[f"{part}_image.tif"], [inputs[f"{part}_label.tif"]],
                          progress=progress, cancel=cancel)
        result.files[f"{part}_dataset"] = path
    result.times["datasets"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = build_unet(DEMO_MODEL)
    info = model_info_from(model, DEMO_MODEL)
    trained = train(model, info, [result.files["train_dataset"]], [result.files["train_dataset"]],
                    demo_train_config(patch, minutes), log_path=out / "training_log.csv",
                    progress=progress, cancel=cancel)
    if trained.stopped_reason == StopReason.CANCELLED:
        raise prog.Cancelled()
    result.train_message = trained.message or trained.stopped_reason
    model_path = save_model(trained.model, out / "demo_model.keras", trained.info)
    result.files["model"] = Path(model_path)
    result.files["training_log"] = out / "training_log.csv"
    result.times["training"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pred_path = predict_dataset(trained.model, trained.info, result.files["test_dataset"],
                                out / "test_prediction.hdf5", PredictConfig(threshold=None),
                                overwrite=True, progress=progress, cancel=cancel)
    result.files["prediction"] = Path(pred_path)
    result.times["prediction"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    report = evaluate(result.files["test_dataset"], pred_path, threshold=0.5)
    result.table = report.format_table()
    overall = [r for r in report.records() if r["sample"] == "(all)"]
    result.scores = overall[0] if overall else {}
    report.to_csv(out / "evaluation.csv")
    result.files["evaluation"] = out / "evaluation.csv"
    result.files["overlay"] = write_overlay(result.files["test_dataset"], pred_path, out / "demo_overlay.png")
    result.times["evaluation"] = time.perf_counter() - t0
    return result


def write_overlay(dataset_path: Path, prediction_path: Path, png: Path, threshold: float = 0.5) -> Path:
    """A PNG of the middle slice of the first sample: grey image | prediction in red with the
    reference outline in green (the reference label is read from ``dataset_path``)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from scipy import ndimage

    from deepscem.dataset import Dataset

    with Dataset.open(dataset_path) as ref, Dataset.open(prediction_path) as pred:
        name = ref.sample_names()[0]
        z = ref.sample(name).shape[0] // 2
        region = (slice(z, z + 1), slice(None), slice(None))
        image = ref.sample(name).read_image(region)[0]
        label = ref.sample(name).read_layer("label_0000", region)[0] > 0
        mask = pred.sample(name).read_layer("prediction_0000", region)[0] > threshold
    rgb = np.repeat(image[..., None], 3, axis=-1)
    red = np.array([1.0, 0.15, 0.1])
    overlay = rgb.copy()
    overlay[mask] = 0.55 * rgb[mask] + 0.45 * red
    outline = label & ~ndimage.binary_erosion(label, iterations=1)
    overlay[outline] = (0.1, 1.0, 0.2)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.4), dpi=100)
    axes[0].imshow(image, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(f"{name}, slice z={z}")
    axes[1].imshow(overlay)
    axes[1].set_title("prediction (red) and reference outline (green)")
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return png
