"""Which of TTA's 8 transforms buy its gain: predict a test dataset once per flip/rotation of
the YX plane, then score the average of every subset of interest side by side.

    python bench/tta.py --model lucchi.keras --test lucchi_test.hdf5 [--work DIR]

``predict --tta`` averages all 8 (4 rotations x with / without a flip of X), at 8x the plain
prediction time. The subsets scored: plain (1), a flip of X (2), rotation by 180 degrees (2),
the axis flips (4: identity, X, Y, both = rotation by 180), the four rotations (4), all 8.
Each transform's prediction is written to ``WORK/t{k}{f}.hdf5`` (k quarter turns, f = 1 with
the flip) and reused by a later run; each subset's average is scored at 0.5 with
``deepscem.evaluation.evaluate`` (as ``run.py evaluate`` does).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SUBSETS: dict[str, list[tuple[int, int]]] = {
    "plain": [(0, 0)],
    "flip X": [(0, 0), (0, 1)],
    "rotate 180": [(0, 0), (2, 0)],
    "axis flips (4)": [(0, 0), (0, 1), (2, 0), (2, 1)],
    "rotations (4)": [(0, 0), (1, 0), (2, 0), (3, 0)],
    "all 8 (--tta)": [(k, f) for k in range(4) for f in (0, 1)],
}


def one_transform(k: int, flip: int):
    """A Predictor.forward that runs only the transform (k quarter turns, flip of X)."""
    def forward(self, tiles):
        y = self.transformed(tiles, k, bool(flip))
        return y[:, None] if self.dim == 2 else y

    return forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True, help="labelled test dataset (.hdf5)")
    parser.add_argument("--work", type=Path, help="folder for the 8 predictions (default: "
                                                  "MODEL's folder / MODEL-stem_tta)")
    args = parser.parse_args()
    work = args.work or args.model.with_name(args.model.stem + "_tta")
    work.mkdir(parents=True, exist_ok=True)

    import h5py
    import numpy as np

    from deepscem.config import PredictConfig
    from deepscem.evaluation import evaluate
    from deepscem.inference import predictor
    from deepscem.inference.dataset_prediction import predict_dataset
    from deepscem.models.storage import load_model

    model, info = load_model(args.model)
    seconds: dict[tuple[int, int], float] = {}
    plain_forward = predictor.Predictor.forward
    for k in range(4):
        for f in (0, 1):
            out = work / f"t{k}{f}.hdf5"
            if out.exists():
                continue
            predictor.Predictor.forward = one_transform(k, f)
            t0 = time.perf_counter()
            partial = out.with_name(out.stem + ".partial.hdf5")
            predict_dataset(model, info, args.test, partial, PredictConfig(), overwrite=True)
            seconds[(k, f)] = time.perf_counter() - t0
            partial.rename(out)
            print(f"transform k={k} flip={f}: {seconds[(k, f)]:.1f} s", file=sys.stderr)
    predictor.Predictor.forward = plain_forward

    rows = []
    for name, members in SUBSETS.items():
        avg = work / "subset.hdf5"
        shutil.copyfile(work / "t00.hdf5", avg)
        with h5py.File(avg, "r+") as dst:
            keys = [(g, d) for g in dst for d in dst[g] if d.startswith("prediction")]
            for g, d in keys:
                acc = np.zeros(dst[g][d].shape, np.float64)
                for k, f in members:
                    with h5py.File(work / f"t{k}{f}.hdf5", "r") as src:
                        acc += src[g][d][...]
                dst[g][d][...] = (acc / len(members)).astype(dst[g][d].dtype)
        report = evaluate(args.test, avg, threshold=0.5, objects=True)
        for i, row in enumerate(report.overall):
            r = row.as_dict()
            rows.append((name, len(members), i, r))
        avg.unlink()

    print(f"\nmodel {args.model}, test {args.test}")
    print("| transforms | n | output | IoU | precision / recall | objects (pred / ref) |")
    print("|---|---:|---:|---:|---|---|")
    for name, n, i, r in rows:
        print(f"| {name} | {n} | {i} | {r['iou']:.4f} | {r['precision']:.3f} / {r['recall']:.3f} "
              f"| {r['segmentation_objects']} / {r['reference_objects']} |")


if __name__ == "__main__":
    main()
