"""A boundary model end to end: model create --boundary, train (targets derived on the fly),
predict --instances, measure, evaluate with AP."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from instance_shapes import two_touching_spheres

from deepscem.cli import main
from deepscem.dataset import Dataset

pytest.importorskip("keras")


def test_boundary_model_trains_predicts_and_labels_instances(tmp_path, capsys):
    ids = two_touching_spheres(shape=(8, 32, 48), radius=7, gap=13)[:, :, :]
    image = np.where(ids > 0, 180, 60).astype(np.uint8)
    data = tmp_path / "data.hdf5"
    with Dataset.create(data, "d", 1) as ds:
        ds.add_sample("s", image, [(ids > 0).astype(np.uint8)], instances=[ids],
                      voxel_size=(40, 8, 8))
    model = tmp_path / "m.keras"
    assert main(["model", "create", str(model), "--boundary", "--filters", "2", "--depth", "1",
                 "--normalization", "none", "--label-names", "mito"]) == 0
    capsys.readouterr()
    assert main(["model", "info", str(model), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["outputs"] == 2 and info["targets"] == "label+boundary"
    assert info["label_names"] == ["mito", "mito boundary"]
    trained = tmp_path / "t.keras"
    assert main(["train", str(model), str(trained), str(data), str(data), "--patch", "1", "16",
                 "16", "--steps-per-epoch", "2", "--epochs", "1", "--batch-size", "2",
                 "--validation-steps", "0"]) == 0
    out = tmp_path / "pred.hdf5"
    assert main(["predict", str(trained), str(data), str(out), "--instances"]) == 0
    with h5py.File(out) as f:
        assert sorted(f["s"]) == ["image", "instance_0000", "prediction_0000",
                                  "prediction_0000_boundary"]
        assert f.attrs["labels"] == 1
        assert f["s/instance_0000"].dtype == np.uint32
        assert f["s/prediction_0000_boundary"].dtype == np.float32
        assert list(f["s"].attrs["voxel_size"]) == [40, 8, 8]
    assert main(["measure", str(out)]) == 0
    assert main(["evaluate", str(data), str(out), "--json", str(tmp_path / "e.json")]) == 0
    row = json.loads((tmp_path / "e.json").read_text())["rows"][0]
    assert 0.0 <= row["ap50"] <= 1.0 and row["reference_instances"] == 2


def test_boundary_targets_from_instances_in_the_sampler(tmp_path):
    from deepscem.training.sampler import PatchSampler

    ids = two_touching_spheres(shape=(4, 32, 48), radius=9, gap=17)
    data = tmp_path / "data.hdf5"
    with Dataset.create(data, "d", 1) as ds:
        ds.add_sample("s", np.ones(ids.shape, np.uint8), [(ids > 0).astype(np.uint8)],
                      instances=[ids])
    from deepscem.training.sampler import PatchSpec

    with PatchSampler([data], (1, 32, 48), target="label+boundary") as sampler:
        assert sampler.channels == 2
        _, target = sampler.read(PatchSpec(0, (2, 0, 0)))
    mask, boundary = target[0, ..., 0], target[0, ..., 1]
    assert set(np.unique(boundary)) == {0.0, 1.0}
    assert not boundary[mask == 0].any()
    # the line between the two touching spheres is a boundary (both sides of the contact)
    row = ids[2, 16]
    x = int(np.flatnonzero(row == 1).max())
    assert row[x + 1] == 2 and boundary[16, x] == 1 and boundary[16, x + 1] == 1
