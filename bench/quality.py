"""Quality per CPU-minute on both shared EM data sets: the same training budget for every
(data set, variant), predict the test slices, score them; prints one table.

    python bench/quality.py --minutes 15                          # defaults + baseline, all data sets
    python bench/quality.py --minutes 4 --variants default,intensity --datasets drosophila-vnc
    python bench/quality.py --minutes 4 --variants default,small,context1 --test-slices 40
    python bench/quality.py --minutes 15 --clock cpu --variants measured --seed 0,1,2,3,4

Data sets (``../shared/data`` or ``--data``):

* ``lucchi-pp``: FIB-SEM, 5 nm isotropic, train (165, 512, 640), test the same size (first
  ``--test-slices`` slices when given), mitochondria;
* ``drosophila-vnc``: serial-section TEM, 4.6 nm pixels, ~50 nm sections, train slices 0-9,
  test 10-19 (the data README's split), mitochondria;
* ``drosophila-vnc-4``: the same split, the four classes (mitochondria, membrane, glia,
  synapse) in one sigmoid model; every class scored.

Variants: ``default`` (UNetConfig() and TrainConfig() as they are), ``baseline`` (the plain
Keras script of ``../shared/baselines``, single label only, its own data loader), and named
changes of the default (see VARIANTS). Each run is a child process (fresh TensorFlow, one at a
time; ``--seed 0,1,2`` repeats each for every seed and adds a mean / range table); every result
is also appended as a JSON line to ``WORK/results.jsonl`` so a long series survives an
interruption. Numbers on a shared machine are lower bounds: the load average at
the start of every run is printed with it.
"""

from __future__ import annotations

import argparse
import json
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
DEFAULT_DATA = Path(os.environ.get("DEEPSCEM_SHARED_DATA", ROOT.parent / "shared" / "data"))
BASELINE = Path(os.environ.get("DEEPSCEM_BASELINE", ROOT.parent / "shared" / "baselines"
                               / "keras_unet2d_lucchi.py"))
CLASSES = ("mitochondria", "membrane", "glia", "synapse")

# Named changes of the defaults: {"unet": UNetConfig fields, "train": TrainConfig fields}.
VARIANTS: dict[str, dict[str, dict]] = {
    "default": {},
    "intensity": {"train": {"intensity": True}},
    "no-intensity": {"train": {"intensity": False}},
    "minmax": {"train": {"normalization": "minmax"}},
    "context1": {"unet": {"context": 1}},
    "context2": {"unet": {"context": 2}},
    "context0": {"unet": {"context": 0}},
    "defects": {"unet": {"context": 1}, "train": {"defects": True}},
    "small": {"unet": {"filters": 16, "depth": 3, "blocks_per_level": 1}},
    "f8": {"unet": {"filters": 8}},
    "vgg1": {"unet": {"block": "vgg", "blocks_per_level": 1}},
    "batch4": {"train": {"batch_size": 4}},
    "bf16": {"train": {"mixed_precision": True}},
    "fp32": {"train": {"mixed_precision": False}},
    "focus25": {"train": {"label_focus": 0.25}},
    "focus10": {"train": {"label_focus": 0.1}},
    "focus0": {"train": {"label_focus": 0.0}},
    "depth5": {"unet": {"depth": 5}},
    "patch512": {"train": {"patch": (1, 512, 512), "batch_size": 2}},
    "ce": {"train": {"loss": "crossentropy"}},
    "dice": {"train": {"loss": "dice"}},
    "boundary-ce": {"train": {"loss": "dice+boundarycrossentropy"}},
    "auto-best": {"train": {"keep_best": True}},  # auto, but the best validation epoch kept
    "context1-focus25": {"unet": {"context": 1}, "train": {"label_focus": 0.25}},
    "intensity-focus25": {"train": {"intensity": True, "label_focus": 0.25}},
    "lr2x": {"train": {"learning_rate": 2e-3}},
    "lr1x": {"train": {"learning_rate": 1e-3}},
    "lr3x": {"train": {"learning_rate": 3e-3}},
    "measured-bf16": {"train": {"mixed_precision": True}},  # + the context model create --data measures
    "measured-batch4": {"train": {"batch_size": 4}},
    "measured-batch2": {"train": {"batch_size": 2}},
    "measured-batch1": {"train": {"batch_size": 1}},
    # narrower (8 filters: 0.51 M parameters, ~1/4 of the FLOPs) and shallower-per-level (one
    # plain convolution block per level: ~1/2) U-Nets of the same depth: more steps per CPU-minute
    "measured-f8": {"unet": {"filters": 8}},
    "measured-vgg1": {"unet": {"block": "vgg", "blocks_per_level": 1}},
    "measured-ema": {"train": {"weight_average": 0.99}},
    "measured-ema995": {"train": {"weight_average": 0.995}},
    "measured-lr1x": {"train": {"learning_rate": 1e-3}},
    "measured-wd05": {"train": {"weight_decay": 0.05}},  # AdamW: lr x 0.05 per step
    "measured-wd2": {"train": {"weight_decay": 0.2}},
    "measured-wd5": {"train": {"weight_decay": 0.5}},
    # per-patch, per-channel normalisation instead of BatchNorm (nnU-Net's choice at small batches)
    "measured-instance": {"unet": {"normalization": "instance"}},
    # spatial dropout after the deepest encoder level and the bottleneck (build_unet(dropout=))
    "measured-drop3": {"build": {"dropout": 0.3}},
    # Dice + the cross-entropy of the hardest 10 % of voxels only (nnU-Net's TopK10)
    "measured-topk": {"train": {"loss": "dice+topkcrossentropy"}},
    # rotation by any angle, zoom and elastic displacement on half the patches (train --deform)
    "measured-deform": {"train": {"deform": True}},
    "measured-focus25": {"train": {"label_focus": 0.25}},
    # trained and predicted at half the YX resolution (2x2 block means; labels by majority),
    # the prediction upsampled (linear) and scored against the full-resolution test labels
    "measured-half": {"data": {"halve": True}},
    "measured-half-lr1x": {"data": {"halve": True}, "train": {"learning_rate": 1e-3}},
    # the same, a label voxel kept only where 3 or 4 of its 2x2 block are labelled (ties: background)
    "measured-half-strict": {"data": {"halve": "strict"}},
    # the network at half the YX resolution inside the model (UNetConfig.scale 2: 2x2 block means
    # in, bilinear logits out), trained on 512² patches with the loss at full resolution
    "measured-scale2": {"unet": {"scale": 2}, "train": {"patch": (1, 512, 512)}},
    "small-bf16": {"unet": {"filters": 16, "depth": 3, "blocks_per_level": 1},
                   "train": {"mixed_precision": True}},
}

# Prediction options scored from the same trained model (``--predict-variants``); "plain" is
# PredictConfig() as it is, the one every run scores.
PREDICT_VARIANTS: dict[str, dict] = {
    "plain": {},
    "tta": {"tta": True},
    "zsmooth1": {"z_smooth": 1.0},
    "tta+zsmooth1": {"tta": True, "z_smooth": 1.0},
}


# -- data --------------------------------------------------------------------------------------

def _write_dataset(path: Path, name: str, image, labels, aliases) -> Path:
    from deepscem.dataset import Dataset

    if not path.exists():
        tmp = path.with_suffix(".partial")
        with Dataset.create(tmp, name, len(labels), overwrite=True) as ds:
            ds.set_label_aliases(list(aliases))
            ds.add_sample(name, image, list(labels))
        tmp.rename(path)
    return path


def build(dataset: str, data: Path, work: Path, test_slices: int | None) -> tuple[Path, Path, list[str]]:
    """(train.hdf5, test.hdf5, label names) for ``dataset`` in ``work`` (reused when there)."""
    import tifffile

    if dataset == "lucchi-pp":
        src = data / "lucchi-pp"
        out = []
        for split in ("train", "test"):
            n = test_slices if split == "test" else None
            keys = range(n) if n else None
            image = tifffile.imread(src / f"{split}_image.tif", key=keys)
            label = (tifffile.imread(src / f"{split}_label.tif", key=keys) > 0).astype("uint8")
            suffix = f"_{n}" if n else ""
            out.append(_write_dataset(work / f"lucchi_{split}{suffix}.hdf5", f"lucchi_{split}",
                                      image, [label], ["mitochondria"]))
        return out[0], out[1], ["mitochondria"]
    src = data / "drosophila-vnc"
    classes = CLASSES if dataset == "drosophila-vnc-4" else CLASSES[:1]
    image = tifffile.imread(src / "image.tif")
    labels = [(tifffile.imread(src / f"label_{c}.tif") > 0).astype("uint8") for c in classes]
    tag = "vnc4" if len(classes) > 1 else "vnc"
    train = _write_dataset(work / f"{tag}_train.hdf5", f"{tag}_train", image[:10],
                           [lab[:10] for lab in labels], classes)
    test = _write_dataset(work / f"{tag}_test.hdf5", f"{tag}_test", image[10:],
                          [lab[10:] for lab in labels], classes)
    return train, test, list(classes)


def halved(path: Path, work: Path, strict: bool = False) -> Path:
    """A copy of the dataset file at ``path`` at half the YX resolution (reused when there);
    labels by majority of each 2x2 block, ties labelled (or, ``strict``, background)."""
    import h5py
    import numpy as np

    out = work / f"{path.stem}_half{'_strict' if strict else ''}.hdf5"
    if out.exists():
        return out
    tmp = out.with_suffix(".partial")
    with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
        dst.attrs.update(dict(src.attrs))
        for name, group in src.items():
            g = dst.create_group(name)
            g.attrs.update(dict(group.attrs))
            z, y, x = group["image"].shape
            g.attrs["shape"] = np.array([z, y // 2, x // 2])
            for key, data in group.items():
                a = data[...].astype(np.float32)  # every layer has the sample's shape
                a = a[:, :y // 2 * 2, :x // 2 * 2].reshape(z, y // 2, 2, x // 2, 2).mean(axis=(2, 4))
                a = np.rint(a) if key == "image" else (a > 0.5) if strict else (a >= 0.5)
                g.create_dataset(key, data=a.astype(data.dtype), chunks=True)
                g[key].attrs.update(dict(data.attrs))
    tmp.rename(out)
    return out


def upsampled_prediction(half_pred: Path, full: Path, out: Path) -> Path:
    """``half_pred`` (a prediction of a halved dataset) brought back to the grid of ``full``."""
    import h5py
    import numpy as np
    from scipy import ndimage

    with h5py.File(half_pred, "r") as src, h5py.File(full, "r") as ref, h5py.File(out, "w") as dst:
        dst.attrs.update(dict(src.attrs))
        for name, group in src.items():
            g = dst.create_group(name)
            g.attrs.update(dict(ref[name].attrs))
            g.create_dataset("image", data=ref[name]["image"][...], chunks=True)
            shape = ref[name]["image"].shape
            for key, data in group.items():
                if key.startswith("prediction"):
                    p = ndimage.zoom(data[...], (1, 2, 2), order=1, grid_mode=True, mode="nearest")
                    full_p = np.zeros(shape, np.float32)
                    full_p[:, :p.shape[1], :p.shape[2]] = p[:, :shape[1], :shape[2]]
                    g.create_dataset(key, data=full_p, chunks=True)
    return out


def baseline_folder(dataset: str, data: Path, work: Path, test_slices: int | None) -> Path:
    """A folder with the four TIFFs the baseline script reads (train/test image/label)."""
    import tifffile

    if dataset == "lucchi-pp" and not test_slices:
        return data / "lucchi-pp"
    folder = work / f"baseline_{dataset}_{test_slices or 'all'}"
    if (folder / "test_label.tif").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    if dataset == "lucchi-pp":
        src = data / "lucchi-pp"
        for split in ("train", "test"):
            keys = range(test_slices) if split == "test" else None
            for kind in ("image", "label"):
                tifffile.imwrite(folder / f"{split}_{kind}.tif",
                                 tifffile.imread(src / f"{split}_{kind}.tif", key=keys))
        return folder
    src = data / "drosophila-vnc"
    image, label = tifffile.imread(src / "image.tif"), tifffile.imread(src / "label_mitochondria.tif")
    for split, sl in (("train", slice(0, 10)), ("test", slice(10, 20))):
        tifffile.imwrite(folder / f"{split}_image.tif", image[sl])
        tifffile.imwrite(folder / f"{split}_label.tif", (label[sl] > 0).astype("uint8") * 255)
    return folder


# -- one run (child process) -------------------------------------------------------------------

def run_deepscem(args: argparse.Namespace, dataset: str, variant: str, work: Path) -> dict:
    import dataclasses

    from deepscem.config import PredictConfig, TrainConfig, UNetConfig
    from deepscem.evaluation import evaluate
    from deepscem.inference.predictor import predict_dataset
    from deepscem.models.storage import model_info_from
    from deepscem.models.unet import build_unet
    from deepscem.training.trainer import train

    train_ds, test_ds, names = build(dataset, args.data, work, args.test_slices)
    change = VARIANTS.get(variant, {})
    full_test = test_ds
    if change.get("data", {}).get("halve"):
        strict = change["data"]["halve"] == "strict"
        train_ds, test_ds = halved(train_ds, work, strict), halved(test_ds, work, strict)
    config = TrainConfig(steps_per_epoch=args.steps_per_epoch, epochs=100_000, validation_steps=0,
                         seed=int(args.seed), time_limit_minutes=args.minutes, lr_schedule="cosine",
                         budget_clock=args.clock)
    unet = dataclasses.replace(UNetConfig(outputs=len(names)), **change.get("unet", {}))
    if variant.startswith("measured"):  # what `model create --data` and the GUI's New model choose
        from deepscem.training.autoconfig import measured_context

        unet = dataclasses.replace(unet, context=measured_context([train_ds])[0])
    if variant.startswith("auto"):  # what `model create --context auto` and `train --auto` choose
        from deepscem.training import autoconfig

        choice = autoconfig.choose(autoconfig.summarize([train_ds]), validation_given=False,
                                   minutes=args.minutes)
        print("\n".join("auto: " + r for r in choice.reasons), file=sys.stderr)
        unet = dataclasses.replace(unet, context=choice.context)
        config = dataclasses.replace(autoconfig.apply(config, choice), validation_steps=8,
                                     budget_clock=args.clock)
    model = build_unet(unet, **change.get("build", {}))
    info = model_info_from(model, unet)
    config = dataclasses.replace(config, **change.get("train", {}))
    t0, c0 = time.perf_counter(), time.process_time()
    stem = f"{dataset}_{variant}{args.suffix}"
    result = train(model, info, [train_ds], None, config, log_path=work / f"{stem}.csv")
    t_train, c_train = time.perf_counter() - t0, time.process_time() - c0
    if args.save_models:
        from deepscem.models.storage import save_model

        save_model(result.model, work / f"{stem}.keras", result.info, overwrite=True)
    out: dict = {"steps": result.steps_done, "patches": result.steps_done * config.batch_size,
                 "train_s": round(t_train, 1), "train_cpu_s": round(c_train, 1),
                 "parameters": int(model.count_params())}
    for how in ["plain"] + [p for p in args.predict_variants.split(",") if p and p != "plain"]:
        t0 = time.perf_counter()
        pred = predict_dataset(result.model, result.info, test_ds,
                               work / f"{stem}_{how}_pred.hdf5",
                               PredictConfig(**PREDICT_VARIANTS[how]), overwrite=True)
        t_pred = time.perf_counter() - t0
        if full_test != test_ds:
            pred = upsampled_prediction(pred, full_test, pred.with_name(pred.stem + "_full.hdf5"))
        report = evaluate(full_test, pred, threshold=0.5, objects=True)
        scores = {names[i] if i < len(names) else str(i): _score(row.as_dict())
                  for i, row in enumerate(report.overall)}
        if how == "plain":
            out.update(predict_s=round(t_pred, 1), scores=scores)
            moved = {i: c for i, c in enumerate(result.calibration) if c.applied}
            if moved:  # the same prediction at the threshold the model had before calibration
                out["thresholds"] = {c.label: c.threshold for c in moved.values()}
                uncal = dict(scores)
                for i, c in moved.items():
                    # output > 0.5 after the fold <=> before it > t; before > 0.5 <=> after > 1 - t
                    row = evaluate(full_test, pred, threshold=1.0 - c.threshold, objects=True).overall[i]
                    uncal[names[i] if i < len(names) else str(i)] = _score(row.as_dict())
                out.setdefault("predict_variants", {})["plain, threshold not calibrated"] = {
                    "predict_s": round(t_pred, 1), "scores": uncal}
        else:
            out.setdefault("predict_variants", {})[how] = {"predict_s": round(t_pred, 1),
                                                           "scores": scores}
    return out


def _score(row: dict) -> dict:
    return {k: (round(float(row[k]), 4) if isinstance(row.get(k), float) else row.get(k))
            for k in ("iou", "f1", "precision", "recall", "reference_objects", "segmentation_objects")}


def run_baseline(args: argparse.Namespace, dataset: str, work: Path) -> dict:
    if dataset == "drosophila-vnc-4":
        return {"skipped": "the baseline script trains one label"}
    folder = baseline_folder(dataset, args.data, work, args.test_slices)
    env = {**os.environ, "LUCCHI_DIR": str(folder)}
    out = work / f"baseline_{dataset}"
    py = sys.executable
    # the script only knows wall minutes: with --clock cpu it gets minutes / cores of wall time
    # (the same CPU time on an otherwise idle machine); its measured CPU time is reported
    minutes = args.minutes / (os.cpu_count() or 1) if args.clock == "cpu" else args.minutes
    t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([py, str(BASELINE), "train", "--minutes", str(minutes), "--out", str(out),
                    "--ckpt-every", str(10 * minutes)], env=env, check=True, capture_output=True)
    t_train = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c_train = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
    lines = subprocess.run([py, str(BASELINE), "predict", "--model", str(out / "final.keras"),
                            "--batch", "2"], env=env, check=True, capture_output=True,
                           text=True).stdout.strip().splitlines()
    res = json.loads(lines[-1])
    return {"train_s": round(t_train, 1), "train_cpu_s": round(c_train, 1), "predict_s": res["predict_s"],
            "scores": {"mitochondria": {"iou": res["iou"], "f1": res["dice"]}}}


def child(args: argparse.Namespace) -> None:
    work = args.work
    load = os.getloadavg()[0]
    t0 = time.time()
    if args.variant == "baseline":
        res = run_baseline(args, args.dataset, work)
    else:
        res = run_deepscem(args, args.dataset, args.variant, work)
    res.update(dataset=args.dataset, variant=args.variant, seed=int(args.seed), minutes=args.minutes,
               load_start=round(load, 1), load_end=round(os.getloadavg()[0], 1),
               started=time.strftime("%Y-%m-%d %H:%M", time.gmtime(t0)), test_slices=args.test_slices)
    print("RESULT " + json.dumps(res), flush=True)


# -- driver ------------------------------------------------------------------------------------

def table(results: list[dict]) -> str:
    lines = ["| data set | variant | label | IoU | Dice | precision / recall | objects (pred / ref) "
             "| steps (patches) | train s (CPU s) | load |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    rows = []
    for r in results:
        rows.append(r)
        for how, v in r.get("predict_variants", {}).items():
            rows.append({**r, "variant": f"{r['variant']} + predict {how}", "scores": v["scores"]})
    for r in rows:
        for label, s in r.get("scores", {}).items():
            pr = (f"{s['precision']:.3f} / {s['recall']:.3f}" if s.get("precision") is not None else "")
            objects = (f"{s['segmentation_objects']} / {s['reference_objects']}"
                       if s.get("reference_objects") is not None else "")
            lines.append(f"| {r['dataset']} | {r['variant']} | {label} | {s['iou']:.3f} | {s['f1']:.3f} "
                         f"| {pr} | {objects} | {r.get('steps', '')} ({r.get('patches', '')}) "
                         f"| {r['train_s']:.0f} ({r.get('train_cpu_s', 0):.0f}) "
                         f"| {r['load_start']}-{r['load_end']} |")
    return "\n".join(lines)


def seed_table(results: list[dict]) -> str:
    """Mean, range and sample standard deviation of the plain IoU over the seeds of every
    (data set, variant, label)."""
    import statistics

    runs: dict[tuple, list[tuple[int, float]]] = {}
    for r in results:
        for label, s in r.get("scores", {}).items():
            runs.setdefault((r["dataset"], r["variant"], label), []).append((r.get("seed"), s["iou"]))
    lines = ["| data set | variant | label | seeds | IoU per seed | mean | min-max | sd |",
             "|---|---|---|---|---|---:|---:|---:|"]
    for (dataset, variant, label), found in runs.items():
        ious = [iou for _, iou in found]
        sd = f"{statistics.stdev(ious):.3f}" if len(ious) > 1 else ""
        lines.append(f"| {dataset} | {variant} | {label} | {', '.join(str(seed) for seed, _ in found)} "
                     f"| {', '.join(f'{iou:.3f}' for iou in ious)} | {statistics.mean(ious):.3f} "
                     f"| {min(ious):.3f}-{max(ious):.3f} | {sd} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, required=True, help="training budget per run")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="what --minutes counts: wall-clock minutes, or CPU minutes of the training "
                             "process (fair between runs on a shared machine; ~2 per idle wall minute "
                             "on 2 cores). The baseline script only knows wall minutes")
    parser.add_argument("--datasets", default="lucchi-pp,drosophila-vnc,drosophila-vnc-4")
    parser.add_argument("--variants", default="default,baseline",
                        help=f"comma-separated, from: baseline, auto (the automatic configuration: "
                             f"2.5D context, held-back validation slices, final weights), "
                             f"measured (the 2.5D context model create --data measures, default "
                             f"training), "
                             f"{', '.join(VARIANTS)}")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, help="folder for datasets, models, results.jsonl")
    parser.add_argument("--test-slices", type=int, help="score only the first N lucchi-pp test slices")
    parser.add_argument("--steps-per-epoch", type=int, default=32)
    parser.add_argument("--seed", default="0",
                        help="training seed, or a comma-separated list: every (data set, variant) is "
                             "then trained once per seed, one run at a time, files named ..._sSEED, "
                             "and a table of the mean and range over the seeds follows")
    parser.add_argument("--predict-variants", default="plain",
                        help=f"comma-separated prediction options, each scored from the same trained "
                             f"model: {', '.join(PREDICT_VARIANTS)} (default plain)")
    parser.add_argument("--save-models", action="store_true", help="keep WORK/DATASET_VARIANT.keras")
    parser.add_argument("--dataset", help=argparse.SUPPRESS)   # child mode
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--suffix", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = [v for v in args.variants.split(",")
               if v not in VARIANTS and v not in ("baseline", "measured", "auto")]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}: see --help")
    if args.dataset:
        child(args)
        return
    try:
        seeds = [int(v) for v in args.seed.split(",")]
    except ValueError:
        parser.error(f"--seed takes integers separated by commas, not {args.seed!r}")
    with tempfile.TemporaryDirectory(prefix="deepscem-quality-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = []
        for dataset in args.datasets.split(","):
            for variant in args.variants.split(","):
                for seed in seeds:
                    cmd = [sys.executable, __file__, "--minutes", str(args.minutes), "--data", str(args.data),
                           "--work", str(work), "--dataset", dataset, "--variant", variant,
                           "--steps-per-epoch", str(args.steps_per_epoch), "--seed", str(seed),
                           "--clock", args.clock, "--predict-variants", args.predict_variants,
                           "--suffix", f"_s{seed}" if len(seeds) > 1 else ""]
                    if args.save_models:
                        cmd.append("--save-models")
                    if args.test_slices:
                        cmd += ["--test-slices", str(args.test_slices)]
                    proc = subprocess.run(cmd, capture_output=True, text=True)
                    found = [line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
                    if not found:
                        print(f"{dataset} {variant} seed {seed}: failed\n{proc.stderr[-2000:]}", flush=True)
                        continue
                    res = json.loads(found[-1])
                    results.append(res)
                    with open(work / "results.jsonl", "a") as f:
                        f.write(json.dumps(res) + "\n")
                    print(json.dumps(res), flush=True)
        print(table(results))
        if len(seeds) > 1:
            print(seed_table(results))


if __name__ == "__main__":
    main()
