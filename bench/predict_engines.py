"""(d) of bench/predict.py: inference engines and default tiling on a trained model.

For each engine (Keras float32, ONNX Runtime float32, OpenVINO float32 / bfloat16, and ONNX
Runtime int8 when asked): raw forward throughput over whole Lucchi++ slices already in memory
(Mvox/s), full ``predict_dataset`` throughput with the default tiling (HDF5 in and out), the
Lucchi++ test IoU at threshold 0.5 and the largest probability difference to Keras float32.
Then the default tiling against the previous default (512^2 tiles overlapping by 0.25) on a
wide volume (Lucchi++ test slices mirrored to 1024 x 1280): voxels out per second as a ratio
to the raw forward pass of the same engine, and the IoU of forced small tiles (256^2) with the
seam margin vs the quarter overlap.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

ENGINES = [("keras", "float32"), ("onnxruntime", "float32"), ("openvino", "float32"),
           ("openvino", "bfloat16")]


def raw_forward(forward, slices: np.ndarray, batch: int, repeats: int) -> float:
    """Best wall time of ``forward`` over (Z, Y, X) slices in memory, batches of ``batch``."""
    forward(slices[:batch, ..., None])  # warm up / compile
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(0, len(slices), batch):
            forward(slices[i:i + batch, ..., None])
        best = min(best, time.perf_counter() - t0)
    return best


def predict_and_score(model, info, test_ds: Path, out: Path, config, forward=None):
    """(seconds, IoU, predicted array) of predict_dataset with ``config``."""
    import h5py

    from deepscem.evaluation import evaluate
    from deepscem.inference.predictor import Predictor, predict_dataset

    predictor = Predictor(model, info, config, forward=forward)
    t0 = time.perf_counter()
    predict_dataset(predictor, info, test_ds, out, config, overwrite=True)
    seconds = time.perf_counter() - t0
    iou = evaluate(test_ds, out, threshold=0.5, objects=False).overall[0].as_dict()["iou"]
    with h5py.File(out, "r") as f:
        name = next(iter(f))
        values = f[name]["prediction_0000"][:]
    return seconds, iou, values


def int8_forward(model, calibration: np.ndarray, folder: Path):
    """ONNX Runtime with the model statically quantised to int8 (QDQ, per-channel weights),
    calibrated on ``calibration`` (N, Y, X) slices."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    from deepscem.inference.engines import OnnxRuntimeForward, cached_onnx

    source = cached_onnx(model)
    target = folder / "int8.onnx"

    class Reader(CalibrationDataReader):
        def __init__(self):
            import onnx

            name = onnx.load(str(source), load_external_data=False).graph.input[0].name
            self.items = iter([{name: s[None, ..., None]} for s in calibration])

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True)
    return OnnxRuntimeForward(target)


def bench_engines(model_path: Path, test_ds: Path, wide_ds: Path, work: Path, *, batch: int,
                  repeats: int, int8: bool, tiling_only: bool = False) -> None:
    from deepscem.config import PredictConfig
    from deepscem.dataset import Dataset
    from deepscem.inference import engines
    from deepscem.models.storage import load_model

    model, info = load_model(model_path)
    if tiling_only:
        bench_tiling(model, info, wide_ds, test_ds, work, batch=batch, repeats=repeats)
        return
    with Dataset.open(test_ds) as ds:
        sample = ds.sample(ds.sample_names()[0])
        slices = sample.read_image()
    voxels = slices.size
    print(f"\n(d) engines on {model_path.name} ({model.count_params():,} parameters), Lucchi++ test "
          f"{slices.shape}; batch {batch}; raw = whole slices in memory (best of {repeats}); "
          "predict = predict_dataset with the default tiling, HDF5 in/out")
    rows, reference, keras_pred, keras_iou = [], None, 1.0, 0.0
    cases = [(e, p, None) for e, p in ENGINES]
    if int8:
        cases.append(("onnxruntime", "int8", int8_forward(model, slices[::8], work)))
    for engine, precision, forward in cases:
        if forward is None:
            forward = engines.make_forward(model, engine, precision)
        raw_t = raw_forward(forward, slices, batch, repeats)
        config = PredictConfig(batch_size=batch, engine=engine,
                               precision=precision if precision != "int8" else None)
        pred_t, iou, values = predict_and_score(
            model, info, test_ds, work / f"pred_{engine}_{precision}.hdf5", config,
            forward=forward if precision == "int8" else None)
        if reference is None:
            reference, keras_pred, keras_iou = values, pred_t, iou
        rows.append((f"{engine} {precision}", voxels / raw_t / 1e6, voxels / pred_t / 1e6,
                     keras_pred / pred_t, raw_t / pred_t, iou, iou - keras_iou,
                     float(np.abs(values - reference).max())))
    print(f"  {'engine':22s} {'raw Mvox/s':>10s} {'predict Mvox/s':>14s} {'x keras':>8s} "
          f"{'of raw':>7s} {'IoU':>7s} {'dIoU':>8s} {'max|dp|':>8s}")
    for name, raw, pred, ratio, of_raw, iou, diou, dp in rows:
        print(f"  {name:22s} {raw:10.2f} {pred:14.2f} {ratio:8.2f} {of_raw:7.2f} {iou:7.4f} "
              f"{diou:+8.4f} {dp:8.4f}")
    bench_tiling(model, info, wide_ds, test_ds, work, batch=batch, repeats=repeats)


def bench_tiling(model, info, wide_ds: Path, test_ds: Path, work: Path, *, batch: int,
                 repeats: int) -> None:
    from deepscem.config import PredictConfig
    from deepscem.dataset import Dataset
    from deepscem.inference import engines
    from deepscem.inference.predictor import Predictor, predict_dataset

    engine = engines.resolve("auto")
    with Dataset.open(wide_ds) as ds:
        sample = ds.sample(ds.sample_names()[0])
        slices = sample.read_image()
    voxels = slices.size
    forward = engines.make_forward(model, *engine)
    raw_t = raw_forward(forward, slices, 1, repeats)  # whole 1024 x 1280 slices
    print(f"\n  default tiling on {slices.shape} (Lucchi++ test slices mirrored), engine "
          f"{' '.join(engine)}; raw forward (whole slices in memory): "
          f"{voxels / raw_t / 1e6:.2f} Mvox/s")
    old_tiles = dict(patch=(1, 512, 512), overlap=0.25, batch_size=batch)
    times = {}
    for label, config in (("default (auto engine, tiles, seams)",
                           PredictConfig(batch_size=batch, engine="auto")),
                          ("auto engine, 512^2 tiles, overlap 0.25",
                           PredictConfig(**old_tiles, engine="auto")),
                          ("before: keras, 512^2 tiles, overlap 0.25",
                           PredictConfig(**old_tiles, engine="keras"))):
        predictor = Predictor(model, info, config)
        grid = predictor.grid(slices.shape)
        t0 = time.perf_counter()
        predict_dataset(predictor, info, wide_ds, work / "wide_pred.hdf5", config, overwrite=True)
        t = time.perf_counter() - t0
        computed = len(grid) * np.prod(grid.tile_shape) / voxels
        times[label] = t
        print(f"    {label:42s} tile {grid.tile_shape}, {computed:.2f}x voxels computed: "
              f"{voxels / t / 1e6:.2f} Mvox/s = {raw_t / t:.2f} of the auto engine's raw forward")
    first, last = list(times.values())[0], list(times.values())[-1]
    print(f"  default vs before (keras, 512^2, 0.25): {last / first:.2f}x faster")
    from deepscem.evaluation import evaluate

    print("  IoU with forced 256^2 tiles (Lucchi++ test): seam margin vs quarter overlap")
    for label, config in (("256^2, auto overlap (2 x 64 px)", PredictConfig(patch=(1, 256, 256),
                                                                            engine="auto")),
                          ("256^2, overlap 0.25", PredictConfig(patch=(1, 256, 256), overlap=0.25,
                                                                engine="auto")),
                          ("256^2, no overlap", PredictConfig(patch=(1, 256, 256), overlap=0.0,
                                                              engine="auto"))):
        out = work / "tiles.hdf5"
        predict_dataset(Predictor(model, info, config), info, test_ds, out, config, overwrite=True)
        iou = evaluate(test_ds, out, threshold=0.5, objects=False).overall[0].as_dict()["iou"]
        print(f"    {label:38s} IoU {iou:.4f}")
