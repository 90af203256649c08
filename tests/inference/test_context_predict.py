"""2.5D prediction (neighbouring slices as channels) and the model's normalisation replayed."""

import numpy as np
import pytest
from training_data import write_dataset

from deepscem.config import PredictConfig, UNetConfig
from deepscem.dataset import Dataset
from deepscem.inference.predictor import Predictor, predict_dataset
from deepscem.models.storage import ModelInfo, load_model, save_model

keras = pytest.importorskip("keras")
WEIGHTS = np.array([1.0, 10.0, 100.0, 1000.0, 10000.0], np.float32)


def context_model(context: int = 2):
    """1x1 conv over 1 + 2c channels with weights 1, 10, 100...: the output encodes which slice
    went into which channel (volume values are small integers)."""
    channels = 1 + 2 * context
    inputs = keras.Input((None, None, channels))
    conv = keras.layers.Conv2D(1, 1, use_bias=False)
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([WEIGHTS[:channels].reshape(1, 1, channels, 1)])
    return model


def expected(volume: np.ndarray, context: int) -> np.ndarray:
    """The same sum computed with np.pad(mode="reflect") along Z (the documented edge rule)."""
    padded = np.pad(volume, [(context, context), (0, 0), (0, 0)], mode="reflect")
    return sum(WEIGHTS[k] * padded[k:k + len(volume)] for k in range(1 + 2 * context))


def info(context: int) -> ModelInfo:
    return ModelInfo(dimension=2, outputs=1, unet=UNetConfig(depth=2, context=context))


@pytest.mark.parametrize("shape, patch, overlap", [
    ((7, 40, 52), None, 0.25),            # whole slices
    ((7, 40, 52), (1, 16, 16), 0.5),      # many overlapping tiles
    ((3, 20, 24), (1, 32, 32), 0.0),      # tiles larger than the volume (mirrored in Y/X)
])
def test_2_5d_prediction_is_identical_tiled_and_untiled_with_mirrored_ends(shape, patch, overlap):
    volume = np.random.default_rng(0).integers(0, 8, shape).astype(np.float32)
    model = context_model(2)
    want = expected(volume, 2)
    predictor = Predictor(model, info(2), PredictConfig(patch=patch, overlap=overlap))
    assert predictor.context == 2
    out = np.zeros(shape, np.float32)
    predictor.predict_volume(lambda r: volume[r], shape, [out])
    assert np.allclose(out, want, rtol=1e-5)
    # slice 0 saw slices [2, 1, 0, 1, 2]; the last one [Z-3, Z-2, Z-1, Z-2, Z-3]
    assert np.allclose(out[0], volume[2] + 10 * volume[1] + 100 * volume[0] + 1e3 * volume[1]
                       + 1e4 * volume[2], rtol=1e-5)


def test_2_5d_tta_and_a_single_slice_volume():
    volume = np.random.default_rng(1).integers(0, 8, (1, 32, 32)).astype(np.float32)
    out = np.zeros(volume.shape, np.float32)
    Predictor(context_model(1), info(1), PredictConfig(tta=True)).predict_volume(
        lambda r: volume[r], volume.shape, [out])
    assert np.allclose(out, 111 * volume, rtol=1e-5)  # one slice: all three channels are it


def test_context_model_saves_loads_and_predicts_a_dataset_with_its_normalisation(tmp_path):
    from deepscem.models.unet import build_unet

    rng = np.random.default_rng(2)
    image = rng.integers(100, 140, (4, 32, 32)).astype(np.uint8)
    image[0, 0, 0] = 255  # a speck: min/max would compress the tissue's contrast
    data = write_dataset(tmp_path / "d.hdf5", {"s": (image, [np.zeros(image.shape, np.uint8)])})
    config = UNetConfig(filters=2, depth=1, blocks_per_level=1, block="vgg", context=1)
    model = build_unet(config)
    assert model.inputs[0].shape[-1] == 3
    meta = ModelInfo(dimension=2, outputs=1, unet=config, normalization="percentile 1 99")
    path = save_model(model, tmp_path / "m.keras", meta)
    loaded, loaded_info = load_model(path)
    assert loaded_info.unet.context == 1 and loaded_info.normalization == "percentile 1 99"
    # the identity-like check of the replay: swap in a model that returns its centre channel
    ident = keras.Model(loaded.inputs[0], keras.layers.Lambda(lambda t: t[..., 1:2])(loaded.inputs[0]))
    out = predict_dataset(ident, loaded_info, data, tmp_path / "p.hdf5")
    with Dataset.open(out) as ds, Dataset.open(data) as src:
        pred = ds.sample("s").read_layer("prediction_0000")
        from deepscem.dataset.normalization import image_reader

        want = image_reader(src.sample("s"), "percentile 1 99")(None)
        assert np.allclose(pred, want, atol=1e-6)
        assert not np.allclose(pred, src.sample("s").read_image(None), atol=1e-3)  # not min/max


def test_a_model_with_a_wrong_channel_count_is_refused(tmp_path):
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs))
    path = save_model(model, tmp_path / "m.keras", ModelInfo(dimension=2, outputs=1,
                                                             unet=UNetConfig(depth=0)))
    from deepscem.errors import ModelError

    with pytest.raises(ModelError, match="3 input channels"):
        load_model(path)
