import csv
import json

import numpy as np
import pytest

from deepscem.dataset import Dataset
from deepscem.errors import DatasetError
from deepscem.evaluation import evaluate


def make_dataset(path, samples, n_labels=1, kind="label"):
    """samples: {name: (image, [layer arrays])}; layers stored as label_* or prediction_*."""
    with Dataset.create(path, "t", n_labels) as ds:
        for name, (image, layers) in samples.items():
            if kind == "label":
                ds.add_sample(name, image, list(layers))
            else:
                s = ds.add_empty_sample(name, image.shape)
                for i, layer in enumerate(layers):
                    s.create_layer(f"prediction_{i:04d}", layer.dtype)[...] = layer
    return path


def test_scores_against_hand_computed_values(tmp_path):
    image = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
    ref = np.zeros((2, 4, 4), np.uint8)
    ref[0, :2, :2] = 1                        # 4 voxels
    pred = np.zeros((2, 4, 4), np.float32)
    pred[0, :2, 1:3] = 0.9                    # 4 predicted, 2 correct
    pred[1] = 0.4                             # below the threshold: background
    empty = np.zeros((2, 4, 4), np.uint8)
    reference = make_dataset(tmp_path / "ref.hdf5", {"a": (image, [ref]), "b": (image, [empty])})
    segmentation = make_dataset(tmp_path / "seg.hdf5",
                                {"a": (image, [pred]), "b": (image, [empty.astype(np.float32)])},
                                kind="prediction")
    report = evaluate(reference, segmentation)
    rows = {(r["sample"], r["label"]): r for r in report.records()}
    a = rows[("a", 0)]
    assert a["f1"] == pytest.approx(0.5) and a["iou"] == pytest.approx(2 / 6)
    assert (a["tp"], a["fp"], a["fn"]) == (2, 2, 2)
    assert rows[("b", 0)]["f1"] == 1.0 and rows[("b", 0)]["iou"] == 1.0   # both empty
    assert rows[("(all)", 0)]["f1"] == pytest.approx(0.5)                  # pooled counts
    assert report.problems == []
    # threshold 0 counts every non-zero float as foreground, as the original did
    loose = {(r["sample"], r["label"]): r for r in evaluate(reference, segmentation,
                                                            threshold=0.0).records()}
    assert loose[("a", 0)]["fp"] == 2 + 16


def test_mismatches_are_reported_not_crashed_on(tmp_path):
    image = np.zeros((1, 8, 8), np.uint8)
    lbl = np.zeros((1, 8, 8), np.uint8)
    reference = make_dataset(tmp_path / "ref.hdf5", {
        "same": (image, [lbl, lbl]), "only_ref": (image, [lbl, lbl]),
        "bad_shape": (image, [lbl, lbl])}, n_labels=2)
    small = np.zeros((1, 4, 8), np.uint8)
    segmentation = make_dataset(tmp_path / "seg.hdf5", {
        "same": (image, [lbl.astype(np.float32)]), "only_seg": (image, [lbl]),
        "bad_shape": (small, [small])}, kind="prediction")
    report = evaluate(reference, segmentation)
    assert [(r.sample, r.label) for r in report.rows] == [("same", 0)]
    text = "\n".join(report.problems)
    assert "'only_ref' is in the reference but not in the segmentation" in text
    assert "'only_seg' is in the segmentation but not in the reference" in text
    assert "'bad_shape' has shape (1, 8, 8) in the reference but (1, 4, 8)" in text
    assert "label 1 has no prediction_0001" in text
    assert "warning: sample 'only_ref'" in report.format_table()


def test_report_files(tmp_path):
    image = np.zeros((1, 8, 8), np.uint8)
    lbl = np.zeros((1, 8, 8), np.uint8)
    lbl[0, 2:4, 2:4] = 1
    ds = make_dataset(tmp_path / "ref.hdf5", {"s": (image, [lbl])})
    report = evaluate(ds, ds)   # label vs label: perfect
    with open(report.to_csv(tmp_path / "r.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:4] == ["label", "sample", "f1", "iou"]
    assert float(rows[0]["f1"]) == 1.0 and rows[0]["reference_objects"] == "1"
    data = json.loads(report.to_json(tmp_path / "r.json").read_text())
    assert data["rows"][0]["object_f1"] == 1.0 and data["overall"][0]["sample"] == "(all)"


def test_not_a_dataset_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.hdf5"
    bad.write_text("not hdf5")
    with pytest.raises(DatasetError, match="not an HDF5 file"):
        evaluate(bad, bad)


def test_original_files_match_the_originals_thresholded_evaluation(shared_data):
    d = shared_data / "original-format"
    expected = {}
    with open(d / "eval_ref_vs_pred_thr05.csv") as fh:
        for row in csv.DictReader(fh):
            expected[(row["sample"], int(row["label"]))] = (float(row["f1"]), float(row["iou"]))
    report = evaluate(d / "orig_dataset.hdf5", d / "orig_pred_2d_nooverlap_64_thr05.hdf5")
    got = {(r.sample, r.label): (r.voxels.scores()["f1"], r.voxels.scores()["iou"])
           for r in report.rows}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value)
    # the unthresholded file scored with the original's rule (any non-zero value) matches its CSV
    with open(d / "eval_ref_vs_pred_float.csv") as fh:
        loose = {(r["sample"], int(r["label"])): float(r["f1"]) for r in csv.DictReader(fh)}
    report = evaluate(d / "orig_dataset.hdf5", d / "orig_pred_2d_overlap_256_float.hdf5",
                      threshold=0.0)
    assert {(r.sample, r.label): r.voxels.scores()["f1"] for r in report.rows} == \
        pytest.approx(loose)
    # the 3D model had one output for a two-label dataset: label 1 is reported, not skipped
    report = evaluate(d / "orig_dataset.hdf5", d / "orig_pred_3d_overlap_4x32x32_float.hdf5")
    assert len(report.rows) == 2 and len(report.problems) == 2


def test_object_figures_are_skipped_for_huge_samples(tmp_path, monkeypatch):
    from deepscem.evaluation import report as evaluation

    image = np.zeros((2, 8, 8), np.uint8)
    lbl = np.zeros((2, 8, 8), np.uint8)
    lbl[:, 1:3, 1:3] = 1
    ds = make_dataset(tmp_path / "ref.hdf5", {"big": (image, [lbl, lbl])}, n_labels=2)
    monkeypatch.setattr(evaluation, "OBJECT_VOXEL_LIMIT", 100)
    report = evaluate(ds, ds)
    assert [r.objects for r in report.rows + report.overall] == [None] * 4
    assert len(report.problems) == 1 and "object figures skipped" in report.problems[0]
    assert report.rows[0].voxels.scores()["f1"] == 1.0
    assert "obj F1" in report.format_table()
