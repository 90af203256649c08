"""Inference engines: each engine's tiled prediction matches Keras float32 within its
documented tolerance; the converted model is cached by content; engine choice rules."""

from __future__ import annotations

import numpy as np
import pytest

from deepscem.config import PredictConfig, UNetConfig
from deepscem.errors import ConfigError
from deepscem.inference import engines

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def tiny():
    from deepscem.models.storage import model_info_from
    from deepscem.models.unet import build_unet

    config = UNetConfig(filters=2, depth=2, blocks_per_level=1)
    keras.utils.set_random_seed(0)
    model = build_unet(config)
    return model, model_info_from(model, config)


@pytest.fixture(scope="module")
def volume():
    return np.random.default_rng(0).random((3, 40, 52)).astype(np.float32)


def predict(model, info, volume, **config):
    from deepscem.inference.predictor import Predictor

    out = np.zeros(volume.shape, np.float32)
    predictor = Predictor(model, info, PredictConfig(patch=(1, 32, 32), overlap=0.25, **config))
    predictor.predict_volume(lambda r: volume[r], volume.shape, [out])
    return out, predictor.engine


@pytest.mark.parametrize("engine, precision", [("onnxruntime", "float32"),
                                               ("openvino", "float32"),
                                               ("openvino", "bfloat16")])
def test_engine_matches_keras_within_its_tolerance(tiny, volume, engine, precision):
    pytest.importorskip(engine)
    model, info = tiny
    reference, used = predict(model, info, volume)
    assert used == ("keras", "float32")
    out, used = predict(model, info, volume, engine=engine, precision=precision)
    assert used == (engine, precision)
    assert np.abs(out - reference).max() <= engines.TOLERANCE[(engine, precision)]


def test_converted_model_is_cached_by_content(tiny, tmp_path):
    from deepscem.models.unet import build_unet

    model, _ = tiny
    first = engines.cached_onnx(model, tmp_path)
    stamp = first.stat().st_mtime_ns
    assert engines.cached_onnx(model, tmp_path) == first and first.stat().st_mtime_ns == stamp
    other = build_unet(UNetConfig(filters=2, depth=2, blocks_per_level=1))  # new weights
    assert engines.cached_onnx(other, tmp_path) != first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial files


def test_engine_choice_rules():
    assert engines.resolve("auto", gpu=True) == ("keras", "float32")
    if engines.installed(engines.CPU_DEFAULT[0]):
        assert engines.resolve("auto", gpu=False)[0] == engines.CPU_DEFAULT[0]
    assert engines.resolve("openvino") == ("openvino", "float32")
    with pytest.raises(ConfigError, match="bfloat16"):
        engines.resolve("onnxruntime", "bfloat16")
    with pytest.raises(ConfigError, match="engine"):
        PredictConfig(engine="tensorrt")
