"""Block-wise prediction of any volume in this process: blocks blend exactly as one pass, the
three output formats, --resume after an interrupted run (the cluster runs are in
test_distributed.py)."""

from pathlib import Path

import numpy as np
import pytest
import tifffile

from deepscem.config import PredictConfig
from deepscem.errors import Cancelled, DatasetError
from deepscem.inference.blocks import plan_blocks, predict_block
from deepscem.inference.predictor import Predictor, predict_volume
from deepscem.inference.volume_job import predict_to_file

keras = pytest.importorskip("keras")
zarr = pytest.importorskip("zarr")

SHAPE = (9, 30, 44)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from synthetic_data import synthetic_volume
    from training_data import tiny_unet

    from deepscem.models.storage import save_model

    folder = tmp_path_factory.mktemp("job")
    model, info = tiny_unet(dim=2, outputs=2, depth=2, filters=2)
    path = save_model(model, folder / "tiny.keras", info)
    image, _ = synthetic_volume(SHAPE, seed=2)
    slices = folder / "slices"
    slices.mkdir()
    for z in range(SHAPE[0]):
        tifffile.imwrite(slices / f"{z}.tif", image[z])
    norm = (image.astype(np.float32) - image.min()) / np.float32(image.max() - image.min())
    return {"model": model, "info": info, "path": path, "slices": slices, "image": image,
            "norm": norm}


def single_pass(setup, config):
    dtype = np.float32 if config.threshold is None else np.uint8
    outs = [np.zeros(SHAPE, dtype) for _ in range(2)]
    predict_volume(setup["model"], setup["norm"], outs, config, info=setup["info"])
    return outs


def test_plan_blocks_cover_the_volume_in_whole_chunks():
    shape, chunks = (37, 300, 520), (8, 64, 64)
    blocks = plan_blocks(shape, chunks, (1, 128, 128), voxels=8 * 256 * 256, min_blocks=4)
    seen = np.zeros(shape, np.uint8)
    for b in blocks:
        seen[b.core] += 1
        for s, c, n in zip(b.core, chunks, shape):
            assert s.start % c == 0 and (s.stop % c == 0 or s.stop == n)
    assert (seen == 1).all() and len(blocks) >= 4
    whole = plan_blocks((40, 100, 100), (8, 100, 100), (1, 64, 64), min_blocks=2)
    assert [b.shape for b in whole] == [(24, 100, 100), (16, 100, 100)]  # whole slices, 2 blocks


@pytest.mark.parametrize("dim, patch, z_smooth", [(2, (1, 16, 16), 0.0), (3, (4, 16, 16), 1.0)])
def test_any_block_equals_the_same_box_of_one_pass(dim, patch, z_smooth):
    from test_predictor_volume import identity_model

    volume = np.random.default_rng(1).random((11, 37, 29), dtype=np.float32)
    config = PredictConfig(patch=patch, overlap=0.5, z_smooth=z_smooth)
    model = identity_model(dim, outputs=1)
    predictor = Predictor(model, None, config)
    whole = np.zeros(volume.shape, np.float32)
    predictor.predict_volume(lambda r: volume[r], volume.shape, [whole])
    grid = predictor.grid(volume.shape)
    for core in [(slice(0, 3), slice(0, 37), slice(0, 29)), (slice(3, 8), slice(10, 21), slice(7, 29)),
                 (slice(8, 11), slice(30, 37), slice(0, 5))]:
        block = predict_block(predictor, lambda r: volume[r], grid, core)
        np.testing.assert_allclose(block[..., 0], whole[core], rtol=0, atol=1e-6)


def test_ome_zarr_output_read_by_ome_zarr_py(setup, tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Multiscales, Reader

    config = PredictConfig(patch=(1, 16, 16), threshold=0.5, z_smooth=1.0)
    out = tmp_path / "seg.ome.zarr"
    summary = predict_to_file(setup["path"], str(setup["slices"]), out, config, block=(2, 16, 32))
    assert summary["blocks"] == summary["run"] == 5 * 2 * 2 and summary["skipped"] == 0
    expected = single_pass(setup, config)
    nodes = list(Reader(parse_url(str(out)))())
    image = [n for n in nodes if n.load(Multiscales) and not n.load(Label)][0]
    np.testing.assert_array_equal(np.asarray(image.data[0]), setup["image"])
    labels = [n for n in nodes if n.load(Label)]
    assert len(labels) == 2
    for node, mask in zip(sorted(labels, key=lambda n: str(n.zarr)), expected):
        np.testing.assert_array_equal(np.asarray(node.data[0]), mask)
        assert len(node.data) >= 1
    assert not list(tmp_path.glob(".*partial*"))


def test_hdf5_and_tiff_outputs(setup, tmp_path):
    from deepscem.dataset import Dataset

    config = PredictConfig(patch=(1, 16, 16))
    expected = single_pass(setup, config)
    out = tmp_path / "pred.hdf5"
    predict_to_file(setup["path"], str(setup["slices"]), out, config)
    with Dataset.open(out) as ds:
        sample = ds.sample("slices")
        np.testing.assert_array_equal(sample.read_layer("image"), setup["image"])
        np.testing.assert_allclose(sample.read_image(), setup["norm"], atol=1e-6)
        for i in range(2):
            assert np.abs(sample.read_layer(f"prediction_000{i}") - expected[i]).max() <= 1e-5
    tif = tmp_path / "pred.tif"
    predict_to_file(setup["path"], str(setup["slices"]), tif, config)
    data = tifffile.imread(tif)
    assert data.shape == (SHAPE[0], 2, *SHAPE[1:])
    assert np.abs(data - np.stack(expected, axis=1)).max() <= 1e-5
    with pytest.raises(DatasetError, match="already exists"):
        predict_to_file(setup["path"], str(setup["slices"]), tif, config)


def test_resume_runs_only_the_missing_blocks(setup, tmp_path):
    from deepscem.progress import CancelToken

    config = PredictConfig(patch=(1, 16, 16))
    out = tmp_path / "resume.ome.zarr"
    token = CancelToken()

    def stop_after_four(p):
        if p.unit == "blocks" and p.done >= 4:
            token.cancel()

    with pytest.raises(Cancelled):
        predict_to_file(setup["path"], str(setup["slices"]), out, config, block=(1, 32, 48),
                        progress=stop_after_four, cancel=token)
    assert not out.exists()
    with pytest.raises(DatasetError, match="another input, model or options"):
        predict_to_file(setup["path"], str(setup["slices"]), out, PredictConfig(patch=(1, 32, 32)),
                        block=(1, 32, 48), resume=True)
    summary = predict_to_file(setup["path"], str(setup["slices"]), out, config, block=(1, 32, 48),
                              resume=True)
    assert (summary["skipped"], summary["run"], summary["blocks"]) == (4, 5, 9)
    root = zarr.open_group(str(out), mode="r")
    expected = single_pass(setup, config)
    for i, name in enumerate(root.attrs["deepscem"]["names"]):
        assert np.abs(root["predictions"][name]["0"][:] - expected[i]).max() <= 1e-5


def test_min_size_cleans_the_labels(setup, tmp_path):
    config = PredictConfig(patch=(1, 16, 16), threshold=0.5, min_size=50)
    out = tmp_path / "clean.ome.zarr"
    summary = predict_to_file(setup["path"], str(setup["slices"]), out, config)
    from deepscem.postprocessing.small_objects import remove_small_objects

    expected = single_pass(setup, config)
    root = zarr.open_group(str(out), mode="r")
    for i, name in enumerate(root.attrs["deepscem"]["names"]):
        removed = remove_small_objects(expected[i], 50)
        np.testing.assert_array_equal(root["labels"][name]["0"][:], expected[i])
        assert summary["removed"][name]["objects"] == removed.objects


def test_cli_predicts_slices_into_ome_zarr(setup, tmp_path, capsys):
    from deepscem import cli

    out = tmp_path / "cells.ome.zarr"
    assert cli.main(["predict", str(setup["path"]), str(setup["slices"]), str(out),
                     "--threshold", "0.5", "--range", "0", "255"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert cli.main(["predict", str(setup["path"]), str(setup["slices"]), str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["predict", str(setup["path"]), str(setup["slices"]),
                     str(Path(tmp_path, "x.png"))]) == 1
    assert "suffix picks its format" in capsys.readouterr().err


def test_an_ome_zarr_image_predicts_like_a_dataset(setup, tmp_path):
    """The GUI's predict path: Dataset.open on an OME-Zarr image, predict_dataset to .hdf5."""
    from deepscem.dataset import Dataset
    from deepscem.inference.predictor import predict_dataset

    image = tmp_path / "cells.ome.zarr"
    predict_to_file(setup["path"], str(setup["slices"]), image, PredictConfig(patch=(1, 16, 16)))
    out = tmp_path / "again.hdf5"
    config = PredictConfig(patch=(1, 16, 16))
    predict_dataset(setup["model"], setup["info"], image, out, config)
    expected = single_pass(setup, config)
    with Dataset.open(out) as ds:
        sample = ds.sample("slices")
        np.testing.assert_array_equal(sample.read_layer("image"), setup["image"])
        assert np.abs(sample.read_layer("prediction_0001") - expected[1]).max() <= 1e-5


def test_a_dataset_sample_input_is_closed_after_the_run(setup, tmp_path):
    """Predicting data.hdf5:SAMPLE leaves no handle open: the dataset can be edited next."""
    from deepscem.dataset import Dataset

    data = tmp_path / "data.hdf5"
    with Dataset.create(data, "d", 1) as ds:
        ds.add_sample("s", setup["image"], [None])
    predict_to_file(setup["path"], f"{data}:s", tmp_path / "s.ome.zarr", PredictConfig(patch=(1, 16, 16)))
    with Dataset.open(data, "r+") as ds:
        ds.rename_sample("s", "t")


def test_a_model_replaced_under_the_same_name_is_loaded_again(setup, tmp_path):
    """The per-process predictor cache knows the file by path, size and date, and keeps one."""
    import os
    import shutil

    from training_data import tiny_unet

    from deepscem.inference import block_tasks
    from deepscem.models.storage import save_model

    path = tmp_path / "m.keras"
    shutil.copy(setup["path"], path)
    config = PredictConfig()
    first = block_tasks.cached_predictor(str(path), config)
    assert block_tasks.cached_predictor(str(path), config) is first
    model, info = tiny_unet(dim=2, outputs=1, depth=1, filters=2)
    save_model(model, path, info)  # retrained: another model under the same name
    stat = setup["path"].stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = block_tasks.cached_predictor(str(path), config)
    assert second is not first and second.outputs == 1 and first.outputs == 2
    assert list(block_tasks._PREDICTORS.values()) == [second]
