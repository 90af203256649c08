"""Foreign models whose output map is not the input's size are refused at load (issue 12)."""

from __future__ import annotations

import keras
import pytest
from keras import layers

from deepscem.errors import ModelError
from deepscem.models.storage import load_model


def _save(tmp_path, name, shape, body):
    inputs = keras.Input(shape)
    model = keras.Model(inputs, body(inputs))
    path = tmp_path / name
    model.save(path)
    return path


@pytest.mark.parametrize("name, shape, body, says", [
    ("up.keras", (None, None, 1),
     lambda x: layers.Conv2D(1, 1, activation="sigmoid")(layers.UpSampling2D()(x)),
     "32 x 32 input into a 64 x 64 output (larger"),
    ("valid.keras", (None, None, 1),
     lambda x: layers.Conv2D(1, 3, padding="valid", activation="sigmoid")(x),
     "32 x 32 input into a 30 x 30 output (smaller"),
    ("pool3d.keras", (None, None, None, 1),
     lambda x: layers.Conv3D(1, 1, activation="sigmoid")(layers.MaxPooling3D()(x)),
     "into a 16 x 16 x 16 output (smaller"),
    ("fixed.keras", (64, 64, 1),
     lambda x: layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x),
     "accepts only inputs of exactly 64 x 64 voxels"),
])
def test_output_shape_must_match_the_input(tmp_path, name, shape, body, says):
    path = _save(tmp_path, name, shape, body)
    with pytest.raises(ModelError, match=says.replace("(", r"\(")):
        load_model(path)


def test_a_same_padding_model_loads(tmp_path):
    path = _save(tmp_path, "ok.keras", (None, None, 1),
                 lambda x: layers.Conv2D(2, 3, padding="same", activation="sigmoid")(x))
    _, info = load_model(path)
    assert info.dimension == 2 and info.outputs == 2
