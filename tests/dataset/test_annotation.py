"""The ``annotated`` layer rule (deepscem/dataset/annotation.py): absent = all annotated,
samples without labels = nothing annotated, whole-layer changes swapped in, region edits in place."""

from __future__ import annotations

import numpy as np
import pytest

from deepscem.dataset import Dataset
from deepscem.dataset.annotation import PART, evenly_spaced, parse_slices
from deepscem.dataset.layers import ANNOTATED
from deepscem.errors import DatasetError


@pytest.fixture
def image(rng) -> np.ndarray:
    return rng.integers(0, 255, (10, 40, 50), dtype=np.uint8)


def test_absent_layer_means_everything_annotated(tmp_path, image):
    with Dataset.create(tmp_path / "a.hdf5", "a", 1) as ds:
        s = ds.add_sample("s", image, [""])  # a blank label given on purpose stays annotated
        assert not s.has_annotation() and s.annotated_fraction() == 1.0
        assert s.read_annotated((slice(2, 4), slice(0, 5))).tolist() == np.ones((2, 5, 50)).tolist()
        s.mark_annotated((slice(0, 1),), 1)  # no-op: already all annotated
        assert ANNOTATED not in s.group


def test_sample_without_labels_has_blank_labels_and_nothing_annotated(tmp_path, image):
    with Dataset.create(tmp_path / "a.hdf5", "a", 2) as ds:
        s = ds.add_sample("s", image)
        assert s.layer_names() == ["image", "label_0000", "label_0001", ANNOTATED]
        assert s.annotated_fraction() == 0.0 and not s.read_layer("label_0001").any()
    with Dataset.open(tmp_path / "a.hdf5") as ds:  # still a valid dataset
        assert ds.sample("s").annotated_per_slice().sum() == 0


def test_zero_label_dataset_holds_images_only(tmp_path, image):
    with Dataset.create(tmp_path / "u.hdf5", "u", 0) as ds:
        ds.add_sample("s", image)
    with Dataset.open(tmp_path / "u.hdf5") as ds:
        assert ds.n_labels == 0 and ds.sample("s").layer_names() == ["image"]
    with pytest.raises(DatasetError, match=">= 0"):
        Dataset.create(tmp_path / "bad.hdf5", "b", -1)


def test_slices_mask_region_and_back_to_all(tmp_path, image):
    with Dataset.create(tmp_path / "a.hdf5", "a", 1) as ds:
        s = ds.add_sample("s", image, [np.zeros_like(image)])
        s.set_annotated_slices([3, 7])
        assert s.annotated_per_slice().tolist() == [0, 0, 0, 2000, 0, 0, 0, 2000, 0, 0]
        assert s.annotated_fraction() == pytest.approx(0.2)
        s.mark_annotated((slice(0, 1), slice(0, 10), slice(0, 10)))
        assert s.annotated_per_slice()[0] == 100 and PART not in s.group
        mask = np.zeros_like(image)
        mask[:, :20] = 255
        s.set_annotated_mask(mask)
        assert s.annotated_fraction() == pytest.approx(0.5)
        s.set_all_annotated()
        assert not s.has_annotation()
        s.mark_annotated((slice(9, 10),), 0)  # from "all": fill value 1, one slab written
        assert s.annotated_per_slice().tolist() == [2000] * 9 + [0]
        s.set_none_annotated()
        assert s.annotated_fraction() == 0.0


def test_mask_of_wrong_shape_or_values_is_refused_and_old_mask_kept(tmp_path, image):
    with Dataset.create(tmp_path / "a.hdf5", "a", 1) as ds:
        s = ds.add_sample("s", image, [""])
        s.set_annotated_slices([1])
        with pytest.raises(Exception, match="differs"):
            s.set_annotated_mask(np.ones((2, 40, 50), np.uint8))
        bad = np.zeros_like(image)
        bad[0, 0, :3] = [1, 2, 3]
        with pytest.raises(Exception, match="at most one other value"):
            s.set_annotated_mask(bad)
        assert s.annotated_per_slice().tolist() == [0, 2000] + [0] * 8 and PART not in s.group


def test_stray_part_layer_is_hidden_and_replaced(tmp_path, image):
    with Dataset.create(tmp_path / "a.hdf5", "a", 1) as ds:
        s = ds.add_sample("s", image, [""])
        s.group.create_dataset(PART, shape=s.shape, dtype=np.uint8)  # as a killed run leaves it
        assert PART not in s.layer_names()
        s.set_annotated_slices([0])
        assert s.annotated_per_slice()[0] == 2000 and PART not in s.group


def test_parse_slices():
    assert parse_slices("0,40,80", 100) == [0, 40, 80]
    assert parse_slices("0-3,2,9", 10) == [0, 1, 2, 3, 9]
    for bad, match in (("5-2", "backwards"), ("10", "outside"), ("a", "cannot read"), (",", "no slice")):
        with pytest.raises(DatasetError, match=match):
            parse_slices(bad, 10)
    assert evenly_spaced(8, 165) == [10, 30, 51, 72, 92, 113, 134, 154]
    assert evenly_spaced(1, 165) == [82] and evenly_spaced(500, 4) == [0, 1, 2, 3]
