"""Instance labelling: blockwise == whole volume, touching objects split by the watershed."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from instance_shapes import two_touching_spheres

from deepscem.cli import main
from deepscem.dataset import Dataset
from deepscem.errors import Cancelled, ConfigError
from deepscem.postprocessing.instances import InstanceConfig, label_instances, ndlabel
from deepscem.progress import CancelToken
from deepscem.training.boundary import boundary_target


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two id volumes are equal up to renumbering (0 stays 0)."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()], 1), axis=0)
    return (len(pairs) == len(np.unique(a)) == len(np.unique(b))
            and all((p[0] == 0) == (p[1] == 0) for p in pairs))


@pytest.mark.parametrize("block", [(7, 16, 20), (40, 9, 90), (1, 70, 13)])
def test_blockwise_components_equal_the_whole_volume(rng, block):
    mask = rng.random((40, 70, 90)) > 0.6  # thousands of objects, many crossing block faces
    whole, n = ndlabel(mask)
    out = np.zeros(mask.shape, np.uint32)
    result = label_instances(mask.astype(np.uint8), out, config=InstanceConfig(block=block))
    assert result.objects == n and result.method == "components"
    assert sorted(np.unique(out)) == list(range(n + 1))  # ids unique and consecutive
    assert same_partition(whole, out)


def test_touching_spheres_stay_one_object_with_components():
    ids = two_touching_spheres()
    out = np.zeros(ids.shape, np.uint32)
    assert label_instances((ids > 0).astype(np.float32), out).objects == 1


@pytest.mark.parametrize("block", [(40, 48, 64), (8, 16, 16), (13, 20, 32)])
def test_watershed_on_boundaries_splits_touching_spheres(block):
    ids = two_touching_spheres()
    boundary = boundary_target(ids, width=2).astype(np.float32)
    out = np.zeros(ids.shape, np.uint32)
    result = label_instances((ids > 0).astype(np.float32), out, boundary=boundary,
                             config=InstanceConfig(block=block))
    assert result.method == "watershed" and result.seeds == 2 and result.objects == 2
    # every object whole across the block faces: the same partition as the reference
    assert same_partition(ids, out)


def test_watershed_on_a_distance_map_splits_touching_spheres():
    from scipy.ndimage import distance_transform_edt

    ids = two_touching_spheres()
    inside = np.zeros(ids.shape, np.float32)
    for i in (1, 2):  # per-object distance, as a model trained on instance distances predicts
        inside = np.maximum(inside, distance_transform_edt(ids == i))
    distance = np.tanh(inside / 5).astype(np.float32) - (ids == 0)
    out = np.zeros(ids.shape, np.uint32)
    result = label_instances(None, out, distance=distance,
                             config=InstanceConfig(seed_threshold=0.9, block=(16, 24, 24)))
    assert result.objects == 2
    assert same_partition(ids, out)


def test_min_size_and_bad_options():
    mask = np.zeros((4, 20, 20), np.uint8)
    mask[0, 0, 0] = 1
    mask[1:3, 5:15, 5:15] = 1
    out = np.zeros(mask.shape, np.uint32)
    assert label_instances(mask, out, config=InstanceConfig(min_size=5)).objects == 1
    assert out[0, 0, 0] == 0 and out[2, 10, 10] == 1
    with pytest.raises(ConfigError, match="boundary or distance"):
        label_instances(mask, out, config=InstanceConfig(method="watershed"))
    with pytest.raises(ConfigError):
        InstanceConfig(method="magic")
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        label_instances(mask, out, cancel=token)


def test_instances_command_writes_layers_and_keeps_existing_ones(tmp_path, capsys):
    ids = two_touching_spheres()
    path = tmp_path / "pred.hdf5"
    with Dataset.create(path, "pred", 1) as ds:
        sample = ds.add_empty_sample("s", ids.shape)
        sample.create_layer("prediction_0000", np.float32)[...] = (ids > 0) * 0.9
        sample.create_layer("prediction_0000_boundary", np.float32)[...] = boundary_target(ids, 2)
    assert main(["instances", str(path)]) == 0
    assert "2 objects (watershed on prediction_0000_boundary)" in capsys.readouterr().out
    assert main(["instances", str(path), "--method", "components"]) == 1
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["instances", str(path), "--method", "components", "--overwrite"]) == 0
    with h5py.File(path) as f:
        layer = f["s/instance_0000"]
        assert layer.dtype == np.uint32 and layer.attrs["method"] == "components"
        assert int(layer[()].max()) == 1 and ".partial" not in "".join(f["s"].keys())
