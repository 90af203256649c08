"""BatchNorm trained through TensorFlow's fused kernel (deepscem.training.batchnorm.fuse_batchnorm)."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
if keras.backend.backend() != "tensorflow":
    pytest.skip("the fused kernel is TensorFlow's", allow_module_level=True)

from deepscem.config import UNetConfig  # noqa: E402
from deepscem.models.unet import build_unet  # noqa: E402
from deepscem.training.batchnorm import batchnorm_layers, fuse_batchnorm  # noqa: E402


def _pair(shape, momentum=0.9, **options):
    """Two BatchNorm layers with the same weights, the second fused."""
    rng = np.random.default_rng(0)
    layers = [keras.layers.BatchNormalization(momentum=momentum, **options) for _ in range(2)]
    for layer in layers:
        layer.build(shape)
    if layers[0].scale:
        gamma = rng.random(shape[-1]).astype(np.float32) + 0.5
        for layer in layers:
            layer.gamma.assign(gamma)
    if layers[0].center:
        for layer in layers:
            layer.beta.assign(np.full(shape[-1], 0.3, np.float32))
    model = keras.Sequential([layers[1]])
    assert fuse_batchnorm(model) == 1
    return layers


def _step(layer, x):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 3)
    grads = tape.gradient(loss, [x, *layer.trainable_variables])
    return (keras.ops.convert_to_numpy(keras.ops.cast(y, "float32")),
            [keras.ops.convert_to_numpy(g) for g in grads],
            keras.ops.convert_to_numpy(layer.moving_mean), keras.ops.convert_to_numpy(layer.moving_variance))


@pytest.mark.parametrize("shape", [(2, 12, 10, 4), (2, 3, 8, 6, 4)])
@pytest.mark.parametrize("options", [{}, dict(center=False, scale=False)])
def test_fused_training_pass_equals_keras_own(shape, options):
    import tensorflow as tf

    keras_bn, fused_bn = _pair(shape, **options)
    x = tf.constant(np.random.default_rng(1).normal(3.0, 2.0, shape).astype(np.float32))
    (y0, g0, m0, v0), (y1, g1, m1, v1) = _step(keras_bn, x), _step(fused_bn, x)
    assert fused_bn.call.__func__ is not type(fused_bn).call  # the fused path is the one taken
    np.testing.assert_allclose(y1, y0, atol=1e-5)
    for a, b in zip(g1, g0):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())
    # moving statistics: the same biased variance (the kernel's is unbiased)
    np.testing.assert_allclose(m1, m0, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(v1, v0, rtol=1e-5)
    assert not np.allclose(v1, 1.0)  # the statistics moved
    x_mean = keras.ops.convert_to_numpy(x).reshape(-1, shape[-1]).mean(0)
    np.testing.assert_allclose(m1, 0.1 * x_mean, rtol=1e-4)
    # inference is Keras' own call, with the moving statistics
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fused_bn(x, training=False)),
                               keras.ops.convert_to_numpy(keras_bn(x, training=False)), rtol=1e-5, atol=1e-6)


def test_fused_u_net_trains_like_the_plain_one_and_saves_plain_layers(tmp_path):
    from deepscem.models.storage import load_model, model_info_from, save_model

    config = UNetConfig(filters=4, depth=2)
    x = np.random.default_rng(2).random((2, 32, 32, 1), dtype=np.float32)
    y = (x > 0.5).astype(np.float32)
    losses = []
    for fused in (False, True):
        keras.utils.set_random_seed(3)
        model = build_unet(config)
        if fused:
            assert fuse_batchnorm(model) == len(batchnorm_layers(model)) > 0
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="binary_crossentropy")
        losses.append([float(model.train_on_batch(x, y)) for _ in range(3)])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)
    path = save_model(model, tmp_path / "m.keras", model_info_from(model, config))
    loaded, _ = load_model(path)
    assert all(type(bn) is keras.layers.BatchNormalization and "call" not in vars(bn)
               for bn in batchnorm_layers(loaded))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x, training=False)),
                               keras.ops.convert_to_numpy(model(x, training=False)), atol=1e-6)
