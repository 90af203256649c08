"""A 2D model whose network works at half (or a quarter of) the YX resolution
(``UNetConfig.scale``): full-resolution inputs and outputs, tiles multiples of scale x 2**depth,
prediction through any tiling, exports, the default patch and the automatic configuration."""

import numpy as np
import pytest
from training_data import blob_dataset

from deepscem.config import PredictConfig, UNetConfig, scaled_patch
from deepscem.errors import ConfigError

keras = pytest.importorskip("keras")
TINY = dict(filters=2, depth=1, blocks_per_level=1, block="vgg")


def build(**kwargs):
    from deepscem.models.unet import build_unet

    keras.utils.set_random_seed(0)
    return build_unet(UNetConfig(**{**TINY, **kwargs}))


@pytest.mark.parametrize("scale, context", [(2, 0), (2, 1), (4, 0)])
def test_the_network_sees_block_means_and_answers_at_full_resolution(scale, context):
    from deepscem.models.introspection import model_info_from, tile_multiple

    model = build(scale=scale, context=context)
    info = model_info_from(model, UNetConfig(**TINY, scale=scale, context=context))
    assert tile_multiple(model, info) == tile_multiple(model) == 2 * scale  # 2**depth x scale
    rng = np.random.default_rng(0)
    x = rng.random((1, 8 * scale, 12 * scale, 1 + 2 * context)).astype(np.float32)
    y = np.asarray(model.predict_on_batch(x))
    assert y.shape == (1, 8 * scale, 12 * scale, 1)
    # shuffling the pixels inside each scale x scale block changes nothing: only the means count
    blocks = x.reshape(1, 8, scale, 12, scale, -1).transpose(0, 1, 3, 2, 4, 5).reshape(1, 8, 12, scale**2, -1)
    shuffled = blocks[:, :, :, rng.permutation(scale**2)].reshape(1, 8, 12, scale, scale, -1)
    shuffled = shuffled.transpose(0, 1, 3, 2, 4, 5).reshape(x.shape)
    assert not np.allclose(shuffled, x)
    assert np.allclose(model.predict_on_batch(shuffled), y, atol=1e-5)
    assert not np.allclose(y[:, ::2], y[:, 1::2])  # up-sampled linearly, not repeated


def test_scale_is_for_2d_models_and_1_2_or_4():
    with pytest.raises(ConfigError, match="scale .* is for 2D models"):
        UNetConfig(dim=3, scale=2)
    with pytest.raises(ConfigError, match="scale"):
        UNetConfig(scale=3)
    assert scaled_patch((1, 256, 256), 2) == (1, 512, 512)


def test_tiled_prediction_matches_the_whole_slice_and_the_model_travels(tmp_path):
    """Saved and loaded with its scale; a seam-free grid (one tile per slice) and overlapping
    tiles that are multiples of 2 x 2**depth agree where tiles give full context."""
    from deepscem.inference.predictor import Predictor
    from deepscem.models.storage import load_model, model_info_from, save_model

    config = UNetConfig(**TINY, scale=2, normalization="none")
    model = build(scale=2, normalization="none")
    path = save_model(model, tmp_path / "s.keras", model_info_from(model, config))
    model, info = load_model(path)
    assert info.unet.scale == 2
    volume = np.random.default_rng(1).random((2, 96, 80)).astype(np.float32)
    whole = np.zeros(volume.shape, np.float32)
    Predictor(model, info, PredictConfig(overlap=0.0)).predict_volume(lambda r: volume[r], volume.shape,
                                                                      [whole])
    want = np.asarray(model.predict_on_batch(volume[..., None]))[..., 0]
    assert np.allclose(whole, want, atol=1e-5)
    tiled = np.zeros(volume.shape, np.float32)
    predictor = Predictor(model, info, PredictConfig(patch=(1, 42, 42), overlap=0.5))
    assert tuple(predictor.multiple[1:]) == (4, 4)  # 42 -> tiles of 44 (21 pixels would not pool)
    predictor.predict_volume(lambda r: volume[r], volume.shape, [tiled])
    inner = (slice(None), slice(8, -8), slice(8, -8))
    assert np.abs(tiled - whole)[inner].max() < 0.05


def test_a_scaled_model_exports_to_onnx_with_the_same_output(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from deepscem.models.export import export_onnx

    model = build(scale=2, context=1)
    path = export_onnx(model, tmp_path / "s.onnx")
    x = np.random.default_rng(2).random((1, 32, 48, 3)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert np.abs(y - model.predict_on_batch(x)).max() <= 1e-4


def test_the_automatic_patch_and_memory_follow_the_scale():
    from deepscem.training.autoconfig import DataSummary, choose

    def summary(shape):
        return DataSummary(shapes=[shape], voxel_sizes=[None], slice_correlation=0.3,
                           anisotropy=9.0, anisotropy_source="measured", n_labels=1)

    plain = choose(summary((20, 1024, 1024)), validation_given=False, memory_gib=1.3)
    half = choose(summary((20, 1024, 1024)), validation_given=False, memory_gib=1.3, scale=2)
    assert plain.patch == (1, 256, 256) and half.patch == (1, 512, 512)
    assert half.micro_batch == plain.micro_batch  # the network's patch is the same 256²
    small = choose(summary((20, 500, 700)), validation_given=False, scale=2)
    assert small.patch == (1, 480, 480)  # multiples of 32 (2 x 16) that fit the plane


def test_cli_creates_a_scaled_model_and_trains_it_on_patches_twice_as_large(tmp_path, capsys, monkeypatch):
    from deepscem import cli
    from deepscem.models.storage import load_model

    monkeypatch.chdir(tmp_path)
    blob_dataset(tmp_path / "DS.hdf5", shape=(2, 64, 64))
    assert cli.main("model create s.keras --filters 2 --depth 1 --scale 2".split()) == 0
    assert load_model(tmp_path / "s.keras")[1].unet.scale == 2
    assert cli.main("model create bad.keras --dim 3 --scale 2".split()) == 1
    assert "2D models" in capsys.readouterr().err
    import deepscem.training.trainer as trainer
    from deepscem.errors import DeepScemError

    seen = []

    def stop(model, info, train_ds, valid_ds, config, **kwargs):
        seen.append(config)
        raise DeepScemError("stopped by the test")

    monkeypatch.setattr(trainer, "train", stop)
    for extra, patch in [("", (1, 512, 512)), ("--patch 1 64 64", (1, 64, 64))]:
        assert cli.main(f"train s.keras o.keras DS.hdf5 DS.hdf5 {extra}".split()) == 1
        assert tuple(seen[-1].patch) == patch
    assert "patch (1, 512, 512)" in capsys.readouterr().out


def test_a_scaled_model_package_passes_bioimageio_test_and_reimports_with_its_multiple(tmp_path):
    pytest.importorskip("bioimageio.core")
    from bioimageio.core import test_model

    from deepscem.models.bioimageio import load_package
    from deepscem.models.export import export_bioimageio
    from deepscem.models.storage import model_info_from

    config = UNetConfig(**TINY, scale=2)
    model = build(scale=2)
    image = np.random.default_rng(3).random((3, 40, 48)).astype(np.float32)
    package = export_bioimageio(model, model_info_from(model, config), tmp_path / "s.zip", image=image)
    summary = test_model(package, weight_format="onnx")
    assert summary.status == "passed", summary.format()
    _, info = load_package(package, engine="onnxruntime")
    assert info.tile_multiple == 4  # 2**depth x scale, declared as the package's size step
