"""The model, loss and storage code under Keras' PyTorch backend (the route to a GPU on
native Windows). Runs in a subprocess because the backend is fixed at Keras import."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                reason="torch is not installed (pip install torch)")

SCRIPT = r"""
import sys
from pathlib import Path
import numpy as np
import keras
assert keras.backend.backend() == "torch", keras.backend.backend()
from deepscem.config import UNetConfig
from deepscem.models import losses, storage
from deepscem.training.batchnorm import recompute_batchnorm
from deepscem.models.unet import build_unet

tmp, shared = Path(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(0)
for config, shape in [(UNetConfig(filters=2, depth=2, outputs=2), (2, 16, 24, 1)),
                      (UNetConfig(dim=3, block="vgg", filters=2, depth=1, outputs=2,
                                  activation="softmax"), (1, 4, 8, 8, 1))]:
    model = build_unet(config)
    x = rng.random(shape, dtype=np.float32)
    y = np.asarray(model.predict_on_batch(x))
    assert y.shape == shape[:-1] + (2,) and y.dtype == np.float32, (y.shape, y.dtype)
    target = (rng.random(y.shape) > 0.5).astype("float32")
    for name in losses.LOSS_NAMES:
        value = float(keras.ops.convert_to_numpy(losses.get_loss(name, config.activation)(target, y)))
        assert np.isfinite(value), name
    model.compile(optimizer="adam", loss=losses.get_loss("dice", config.activation),
                  metrics=losses.get_metrics(config.activation))
    logs = model.train_on_batch(x, target, return_dict=True)
    assert np.isfinite(logs["loss"]) and 0 <= logs["f1"] <= 1, logs
    recompute_batchnorm(model, [x])
    expected = np.asarray(model.predict_on_batch(x))
    for suffix in (".keras", ".h5"):
        path = storage.save_model(model, tmp / f"m{config.dim}{suffix}",
                                  storage.model_info_from(model, config))
        again, info = storage.load_model(path)
        np.testing.assert_array_equal(np.asarray(again.predict_on_batch(x)), expected)
        assert info.unet == config
# A model saved by the parent process (TensorFlow backend) gives the same predictions here,
# and one saved here loads there (checked by the parent).
cross = np.load(tmp / "cross_io.npz")
model, info = storage.load_model(tmp / "from_parent.keras")
np.testing.assert_allclose(np.asarray(model.predict_on_batch(cross["x"])), cross["y"], atol=1e-5)
storage.save_model(model, tmp / "from_torch.h5", info)
if shared:
    ref = np.load(Path(shared) / "orig_model_io_reference.npz")
    model, info = storage.load_model(Path(shared) / "orig_unet2d_res_f8_d3_o2_trained.h5")
    np.testing.assert_allclose(np.asarray(model.predict_on_batch(ref["x2d"])), ref["y2d_trained"],
                               atol=1e-5)
print("torch backend ok")
"""


def test_models_losses_and_storage_under_torch_backend(tmp_path):
    import numpy as np

    from deepscem.config import UNetConfig
    from deepscem.models import storage
    from deepscem.models.unet import build_unet
    from tests.conftest import SHARED_DATA

    config = UNetConfig(filters=2, depth=2, outputs=2)
    model = build_unet(config)
    x = np.random.default_rng(3).random((1, 32, 32, 1), dtype=np.float32)
    y = np.asarray(model.predict_on_batch(x))
    np.savez(tmp_path / "cross_io.npz", x=x, y=y)
    storage.save_model(model, tmp_path / "from_parent.keras", storage.model_info_from(model, config))

    original = SHARED_DATA / "original-format"
    env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": str(ROOT),
           "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path),
                          str(original) if original.is_dir() else ""],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "torch backend ok" in out.stdout
    again, info = storage.load_model(tmp_path / "from_torch.h5")
    np.testing.assert_allclose(np.asarray(again.predict_on_batch(x)), y, atol=1e-5)
    assert info.unet == config
