"""Model files: .keras / .h5 round trips, metadata, atomic saves, clear errors, the
original DeepSCEM's Keras 2 files."""

from __future__ import annotations

import zipfile

import h5py
import numpy as np
import pytest

keras = pytest.importorskip("keras")

import deepscem  # noqa: E402
from deepscem.config import UNetConfig  # noqa: E402
from deepscem.errors import ModelError  # noqa: E402
from deepscem.models import storage  # noqa: E402
from deepscem.models.introspection import tile_multiple  # noqa: E402
from deepscem.models.storage import ModelInfo, load_model, model_info_from, save_model  # noqa: E402
from deepscem.models.unet import build_unet  # noqa: E402

CONFIG = UNetConfig(filters=2, depth=2, outputs=2, name="tiny")
ORIGINAL = "original-format"


@pytest.fixture(scope="module")
def tiny_model():
    model = build_unet(CONFIG)
    # Move BatchNorm statistics away from their initial values so a lost weight shows.
    x = np.random.default_rng(0).random((2, 16, 16, 1), dtype=np.float32)
    model(x * 3 + 1, training=True)
    return model


def _info(model):
    info = model_info_from(model, CONFIG)
    info.label_names = ["mito", "er"]
    info.patch_size = (1, 64, 64)
    info.history = {"epochs": 2, "loss": [np.float32(0.5), 0.25], "best_val_loss": np.float64(0.3)}
    return info


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_round_trip_is_bit_identical_and_keeps_metadata(tmp_path, tiny_model, suffix):
    path = save_model(tiny_model, tmp_path / f"m{suffix}", _info(tiny_model))
    model, info = load_model(path)
    x = np.random.default_rng(1).random((1, 32, 32, 1), dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(model.predict_on_batch(x)),
                                  np.asarray(tiny_model.predict_on_batch(x)))
    assert info.unet == CONFIG and info.label_names == ["mito", "er"]
    assert info.patch_size == (1, 64, 64) and info.dimension == 2 and info.outputs == 2
    assert info.history == {"epochs": 2, "loss": [0.5, 0.25], "best_val_loss": pytest.approx(0.3)}
    assert info.version and not info.legacy and info.normalization == "minmax"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"m{suffix}"]  # no temp file left


def test_keras_file_keeps_metadata_as_a_zip_member_plain_keras_still_loads(tmp_path, tiny_model):
    path = save_model(tiny_model, tmp_path / "m.keras", _info(tiny_model))
    with zipfile.ZipFile(path) as archive:
        assert storage.METADATA_MEMBER in archive.namelist()
    assert keras.saving.load_model(path, compile=False).name == "tiny"
    h5_path = save_model(tiny_model, tmp_path / "m.h5", _info(tiny_model))
    with h5py.File(h5_path) as f:
        assert "mito" in f.attrs[storage.METADATA_ATTR]


def test_upper_case_suffix_and_a_large_history(tmp_path, tiny_model):
    info = _info(tiny_model)
    info.history = {"loss": [0.123456789] * 8000}  # > 64 KiB of JSON in one HDF5 attribute
    _, again = load_model(save_model(tiny_model, tmp_path / "BIG.H5", info))
    assert again.history == info.history
    renamed = tmp_path / "actually_h5.keras"
    (tmp_path / "BIG.H5").rename(renamed)
    assert load_model(renamed)[1].history == info.history


def test_3d_model_round_trip(tmp_path):
    config = UNetConfig(dim=3, filters=2, depth=1, block="vgg")
    model = build_unet(config)
    _, info = load_model(save_model(model, tmp_path / "m3.h5", model_info_from(model, config)))
    assert info.dimension == 3 and info.unet == config


def test_no_overwrite_and_bad_names(tmp_path, tiny_model):
    path = save_model(tiny_model, tmp_path / "m.keras", _info(tiny_model))
    with pytest.raises(ModelError, match="already exists"):
        save_model(tiny_model, path, _info(tiny_model), overwrite=False)
    with pytest.raises(ModelError, match=r"\.keras or \.h5"):
        save_model(tiny_model, tmp_path / "m.txt", _info(tiny_model))
    with pytest.raises(ModelError, match="does not exist"):
        save_model(tiny_model, tmp_path / "nope" / "m.keras", _info(tiny_model))


def test_failed_save_leaves_the_existing_file_intact(tmp_path, tiny_model, monkeypatch):
    path = save_model(tiny_model, tmp_path / "m.h5", _info(tiny_model))
    before = path.read_bytes()
    other = build_unet(UNetConfig(filters=2, depth=1))

    def broken_save(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"half a model")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", broken_save)
    with pytest.raises(ModelError, match="No space left"):
        save_model(other, path, model_info_from(other))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"]


def test_corrupt_and_non_model_files_give_clear_errors(tmp_path, tiny_model):
    good = save_model(tiny_model, tmp_path / "good.keras", _info(tiny_model))
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    good_h5 = save_model(tiny_model, tmp_path / "good.h5", _info(tiny_model))
    truncated_h5 = tmp_path / "truncated.h5"
    truncated_h5.write_bytes(good_h5.read_bytes()[: good_h5.stat().st_size // 2])
    text = tmp_path / "notes.h5"
    text.write_text("not a model\n")
    dataset = tmp_path / "dataset.hdf5"
    with h5py.File(dataset, "w") as f:
        f.attrs["name"], f.attrs["labels"] = "ds", 1
        f.create_dataset("s/image", data=np.zeros((1, 4, 4), np.float32))
    for bad, message in [(truncated, "damaged|cannot load"), (truncated_h5, "damaged|cannot load"),
                         (text, "not a model file"), (dataset, "dataset"),
                         (tmp_path / "missing.keras", "does not exist")]:
        with pytest.raises(ModelError, match=message):
            load_model(bad)


def test_three_channel_model_is_refused(tmp_path):
    inputs = keras.Input((None, None, 3))
    rgb = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs))
    rgb.save(tmp_path / "rgb.keras")
    with pytest.raises(ModelError, match="3 input channels"):
        load_model(tmp_path / "rgb.keras")


def test_model_info_dict_round_trip_ignores_unknown_keys():
    info = ModelInfo(dimension=3, outputs=2, patch_size=[8, 64, 64], unet=UNetConfig(dim=3, outputs=2))
    data = info.to_dict() | {"future_field": 1}
    data["unet"] = data["unet"] | {"future_option": True}
    again = ModelInfo.from_dict(data)
    assert again == info and again.label_names == ["label 0", "label 1"]


@pytest.mark.filterwarnings("ignore:You are using a softmax")  # the original's 1-output softmax
@pytest.mark.parametrize("name,key_in,key_out", [
    ("orig_unet2d_res_f8_d3_o2_trained.h5", "x2d", "y2d_trained"),
    ("orig_unet3d_vgg_f4_d2_o1.h5", "x3d", "y3d"),
])
def test_original_models_reproduce_their_reference_outputs(shared_data, name, key_in, key_out):
    reference = np.load(shared_data / ORIGINAL / "orig_model_io_reference.npz")
    model, info = load_model(shared_data / ORIGINAL / name)
    assert info.legacy and info.version is None and info.patch_size is None
    assert info.dimension == reference[key_in].ndim - 2
    assert info.outputs == reference[key_out].shape[-1]
    assert info.unet is not None and info.unet.filters in (4, 8)
    assert tile_multiple(model) == 2 ** info.unet.depth
    y = np.asarray(model.predict_on_batch(reference[key_in]))
    np.testing.assert_allclose(y, reference[key_out], atol=1e-5)


def test_original_model_resaved_in_both_formats(shared_data, tmp_path):
    model, info = load_model(shared_data / ORIGINAL / "orig_unet2d_res_f8_d3_o2.h5")
    assert info.unet.block == "residual" and info.unet.depth == 2 and info.unet.blocks_per_level == 2
    x = np.random.default_rng(2).random((1, 16, 16, 1), dtype=np.float32)
    expected = np.asarray(model.predict_on_batch(x))
    for suffix in (".keras", ".h5"):
        again, again_info = load_model(save_model(model, tmp_path / f"o{suffix}", info))
        np.testing.assert_array_equal(np.asarray(again.predict_on_batch(x)), expected)
        assert again_info.legacy  # still marked as the original's network
        assert again_info.version == deepscem.__version__  # but written by us
