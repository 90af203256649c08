"""U-Net builder, losses and metrics: tiny networks, real forward passes."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from deepscem.config import UNetConfig  # noqa: E402
from deepscem.errors import ConfigError, ModelError  # noqa: E402
from deepscem.models import losses  # noqa: E402
from deepscem.models.introspection import tile_multiple  # noqa: E402
from deepscem.models.storage import model_info_from  # noqa: E402
from deepscem.models.unet import build_unet, check_tile_shape  # noqa: E402
from deepscem.training.batchnorm import recompute_batchnorm  # noqa: E402

TINY = dict(filters=2, depth=2)


@pytest.mark.parametrize(
    "options",
    [
        dict(dim=2, block="residual", normalization="batchnorm", activation="sigmoid", outputs=2),
        dict(dim=2, block="vgg", normalization="none", activation="softmax", outputs=3),
        dict(dim=2, block="vgg", normalization="batchnorm", activation="tanh", kernel_size=5,
             blocks_per_level=1),
        dict(dim=2, block="residual", normalization="none", activation="linear", blocks_per_level=3),
        dict(dim=2, block="residual", depth=0, activation="sigmoid"),
        dict(dim=3, block="residual", normalization="batchnorm", activation="sigmoid"),
        dict(dim=3, block="vgg", normalization="none", activation="softmax", outputs=2,
             blocks_per_level=1),
        dict(dim=3, block="vgg", normalization="batchnorm", activation="linear", kernel_size=1),
        dict(dim=2, block="residual", normalization="instance", activation="sigmoid"),
        dict(dim=3, block="residual", normalization="instance", activation="sigmoid"),
    ],
)
def test_every_option_builds_and_keeps_the_spatial_shape(options):
    config = UNetConfig(**{**TINY, **options})
    model = build_unet(config)
    spatial = (8, 16, 24) if config.dim == 3 else (16, 24)
    x = np.random.default_rng(0).random((2, *spatial, 1), dtype=np.float32)
    y = np.asarray(model.predict_on_batch(x))
    assert y.shape == (2, *spatial, config.outputs)
    assert y.dtype == np.float32 and np.isfinite(y).all()
    if config.activation == "sigmoid":
        assert 0 <= y.min() and y.max() <= 1
    if config.activation == "softmax":
        np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)
    if config.activation == "tanh":
        assert -1 <= y.min() and y.max() <= 1
    has_bn = any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert has_bn == (config.normalization == "batchnorm")
    has_in = any(isinstance(layer, keras.layers.GroupNormalization) for layer in model.layers)
    assert has_in == (config.normalization == "instance")
    assert tuple(model.inputs[0].shape) == (None,) * (config.dim + 1) + (1,)  # any tile size


def test_filters_double_per_level_and_blocks_count():
    model = build_unet(UNetConfig(filters=3, depth=2, block="vgg", blocks_per_level=3,
                                  normalization="none"))
    convs = {layer.name: layer.filters for layer in model.layers
             if type(layer) is keras.layers.Conv2D}
    assert convs["enc0_b2_conv"] == 3 and convs["enc1_b0_conv"] == 6 and convs["center_b0_conv"] == 12
    assert convs["dec0_b1_conv"] == 3 and "enc0_b3_conv" not in convs


def test_softmax_with_a_single_output_is_refused():
    with pytest.raises(ConfigError, match="softmax"):
        build_unet(UNetConfig(activation="softmax", outputs=1, **TINY))


@pytest.mark.parametrize("name", ["", "mito/er"])
def test_bad_model_names_are_refused(name):
    with pytest.raises(ConfigError, match="name"):
        build_unet(UNetConfig(name=name, **TINY))


def test_tile_multiple_and_check():
    config = UNetConfig(**TINY)
    model = build_unet(config)
    assert tile_multiple(model) == 4
    assert tile_multiple(info=model_info_from(model, config)) == 4
    with pytest.raises(ModelError):
        tile_multiple(info=model_info_from(model))  # no config, no model: cannot tell
    check_tile_shape((64, 64), 2)
    with pytest.raises(ConfigError, match=r"multiple of 4.*\(12, 64\)"):
        check_tile_shape((10, 64), 2)


def test_mixed_precision_policy_keeps_float32_output():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_unet(UNetConfig(**TINY))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    y = model.predict_on_batch(np.zeros((1, 16, 16, 1), np.float32))
    assert np.asarray(y).dtype == np.float32
    assert model.get_layer("logits").compute_dtype == "bfloat16"


def test_batchnorm_momentum_is_a_parameter():
    model = build_unet(UNetConfig(**TINY), bn_momentum=0.5)
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(bn.momentum == 0.5 for bn in bns)
    assert build_unet(UNetConfig(**TINY)).get_layer("enc0_b0_bn").momentum <= 0.9


def test_recompute_batchnorm_matches_training_statistics():
    model = build_unet(UNetConfig(filters=2, depth=1, block="vgg", blocks_per_level=1))
    x = np.random.default_rng(1).random((4, 16, 16, 1), dtype=np.float32) * 5 + 3
    assert recompute_batchnorm(model, [x, x]) == 2
    bn = model.get_layer("enc0_b0_bn")
    conv_out = keras.Model(model.input, model.get_layer("enc0_b0_conv").output)(x)
    conv_out = keras.ops.convert_to_numpy(conv_out)
    moving_mean = keras.ops.convert_to_numpy(bn.moving_mean)
    np.testing.assert_allclose(moving_mean, conv_out.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.9  # restored
    train_out = keras.ops.convert_to_numpy(model(x, training=True))
    infer_out = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(infer_out, train_out, atol=1e-3)


def test_recompute_batchnorm_averages_batches_and_keeps_statistics_on_error():
    model = build_unet(UNetConfig(filters=2, depth=1, block="vgg", blocks_per_level=1))
    rng = np.random.default_rng(2)
    a = rng.random((2, 16, 16, 1), dtype=np.float32)
    b = rng.random((2, 16, 16, 1), dtype=np.float32) * 4 + 2
    conv = keras.Model(model.input, model.get_layer("enc0_b0_conv").output)
    stats = [keras.ops.convert_to_numpy(conv(x)).reshape(-1, 2) for x in (a, b)]
    bn = model.get_layer("enc0_b0_bn")
    before = keras.ops.convert_to_numpy(bn.moving_mean).copy()

    def failing():
        yield a
        raise RuntimeError("reading the next batch failed")

    with pytest.raises(RuntimeError):
        recompute_batchnorm(model, failing())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(bn.moving_mean), before)
    assert bn.momentum == 0.9

    assert recompute_batchnorm(model, [a, b]) == 2
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_mean),
                               (stats[0].mean(0) + stats[1].mean(0)) / 2, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_variance),
                               (stats[0].var(0) + stats[1].var(0)) / 2, rtol=1e-3, atol=1e-5)


# --- losses and metrics -------------------------------------------------------------------


def _masks(rng, shape=(2, 8, 8, 2)):
    return (rng.random(shape) > 0.7).astype(np.float32)


def test_dice_loss_values(rng):
    dice = losses.get_loss("Dice", "sigmoid")
    truth = _masks(rng)
    assert float(dice(truth, truth)) == pytest.approx(0.0, abs=1e-6)
    assert float(dice(truth, 1 - truth)) > 0.9
    empty = np.zeros_like(truth)
    value = float(dice(empty, empty))
    assert np.isfinite(value) and value == pytest.approx(0.0, abs=1e-6)
    # per-channel mean: one perfect channel, one wrong channel -> about 0.5
    pred = truth.copy()
    pred[..., 1] = 1 - truth[..., 1]
    assert 0.4 < float(dice(truth, pred)) < 0.6


@pytest.mark.parametrize("name", ["dice", "DICE", "CrossEntropy", "crossentropy", "MSE", "mse",
                                  "Dice+CrossEntropy", "Dice+BoundaryCrossEntropy", "Dice+TopKCrossEntropy"])
@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_get_loss_names_are_case_insensitive_and_finite(name, activation, rng):
    loss = losses.get_loss(name, activation)
    truth = _masks(rng)
    pred = np.clip(rng.random(truth.shape), 0.01, 0.99).astype(np.float32)
    value = float(loss(truth, pred))
    assert np.isfinite(value) and value >= 0
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert float(restored(truth, pred)) == pytest.approx(value, rel=1e-5)


def test_boundary_band_and_boundary_weighted_crossentropy():
    """The band is the voxels within ``radius`` of a boundary, on both sides; the weighted
    loss is Dice + cross-entropy when the weight is 0, and an error on the boundary costs
    more than the same error far from it."""
    truth = np.zeros((1, 16, 16, 1), np.float32)
    truth[0, 4:12, 4:12] = 1
    band = np.asarray(losses.boundary_band(truth, 1))[0, ..., 0]
    expected = np.zeros((16, 16), bool)
    expected[3:13, 3:13] = True
    expected[5:11, 5:11] = False
    assert np.array_equal(band > 0, expected)
    pred = np.where(truth > 0, 0.9, 0.1).astype(np.float32)
    plain = losses.get_loss("dice+crossentropy", "sigmoid")
    unweighted = losses.DiceBoundaryCrossEntropyLoss(weight=0.0)
    assert float(unweighted(truth, pred)) == pytest.approx(float(plain(truth, pred)), rel=1e-5)
    weighted = losses.get_loss("dice+boundaryce", "sigmoid")
    assert isinstance(weighted, losses.DiceBoundaryCrossEntropyLoss)
    at_boundary, far = pred.copy(), pred.copy()
    at_boundary[0, 4, 8] = 0.1  # a foreground voxel on the edge missed
    far[0, 8, 8] = 0.1          # one in the middle missed
    assert float(weighted(truth, at_boundary)) > float(weighted(truth, far)) + 1e-3
    assert float(plain(truth, at_boundary)) == pytest.approx(float(plain(truth, far)), rel=1e-6)
    for categorical in (False, True):  # softmax: one-hot channels, finite
        onehot = np.concatenate([truth, 1 - truth], axis=-1)
        soft = np.concatenate([pred, 1 - pred], axis=-1)
        loss = losses.DiceBoundaryCrossEntropyLoss(categorical=categorical)
        assert np.isfinite(float(loss(onehot, soft)))


def test_topk_crossentropy_counts_only_the_hardest_voxels():
    """With every voxel counted it is Dice + cross-entropy; with 10 % it averages the hardest
    tenth, so one wrong voxel among easy ones weighs 10x more; unannotated voxels never count."""
    truth = np.zeros((2, 16, 16, 1), np.float32)
    truth[:, 4:12, 4:12] = 1
    pred = np.where(truth > 0, 0.9, 0.1).astype(np.float32)
    plain = losses.get_loss("dice+crossentropy", "sigmoid")
    everything = losses.DiceTopKCrossEntropyLoss(fraction=1.0)
    assert float(everything(truth, pred)) == pytest.approx(float(plain(truth, pred)), rel=1e-5)
    topk = losses.get_loss("dice+topk", "sigmoid")
    assert isinstance(topk, losses.DiceTopKCrossEntropyLoss) and topk.fraction == 0.1
    # all voxels equally easy: the top tenth's mean is the mean
    dice = 1.0 - float(losses.soft_dice_per_channel(truth, pred)[0])
    assert float(topk(truth, pred)) == pytest.approx(-np.log(0.9) + dice, rel=1e-4)
    wrong = pred.copy()
    wrong[0, 0, 0] = 0.99  # one confident false positive in the background
    ce_wrong = -np.log(0.01) + np.log(0.9)  # what it adds to the sum of cross-entropies
    k = np.ceil(0.1 * truth.size)
    dice_wrong = 1.0 - float(losses.soft_dice_per_channel(truth, wrong)[0])
    assert float(topk(truth, wrong)) == pytest.approx(-np.log(0.9) + ce_wrong / k + dice_wrong, rel=1e-4)
    # partial labels: the same error where nothing is annotated changes nothing
    annotated = np.ones_like(truth)
    annotated[0, :2] = 0
    masked = np.concatenate([truth, annotated], axis=-1)
    assert float(topk(masked, wrong)) == pytest.approx(float(topk(masked, pred)), rel=1e-6)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(topk))
    assert restored.fraction == 0.1
    onehot, soft = np.concatenate([truth, 1 - truth], -1), np.concatenate([wrong, 1 - wrong], -1)
    assert np.isfinite(float(losses.DiceTopKCrossEntropyLoss(categorical=True)(onehot, soft)))
    with pytest.raises(ConfigError, match="fraction"):
        losses.DiceTopKCrossEntropyLoss(fraction=0.0)


def test_loss_errors():
    with pytest.raises(ConfigError, match="unknown loss"):
        losses.get_loss("hinge", "sigmoid")
    with pytest.raises(ConfigError, match="MSE"):
        losses.get_loss("crossentropy", "tanh")
    assert isinstance(losses.get_loss("mse", "linear"), losses.MeanSquaredErrorLoss)


def test_f1_and_iou_metrics():
    truth = np.zeros((1, 4, 4, 1), np.float32)
    truth[0, :2] = 1  # 8 foreground voxels
    pred = np.zeros_like(truth)
    pred[0, :1] = 0.9  # 4 true positives
    pred[0, 3, :2] = 0.6  # 2 false positives
    pred[0, 2, :2] = 0.4  # below threshold
    f1, iou = losses.get_metrics("sigmoid")
    f1.update_state(truth, pred)
    iou.update_state(truth, pred)
    assert float(f1.result()) == pytest.approx(2 * 4 / (2 * 4 + 2 + 4))
    assert float(iou.result()) == pytest.approx(4 / (4 + 2 + 4))
    f1.reset_state()
    f1.update_state(np.zeros_like(truth), np.zeros_like(truth))
    assert float(f1.result()) == 1.0  # both empty: perfect, not NaN
    assert [m.name for m in losses.get_metrics("linear")] == ["mae"]


# One compiled (traced) step; the others eager, as tracing costs ~10 s on a loaded CPU.
@pytest.mark.parametrize("loss_name,activation,eager", [("dice", "sigmoid", True),
                                                        ("crossentropy", "softmax", True),
                                                        ("dice+crossentropy", "sigmoid", False)])
def test_tiny_model_trains_one_step(loss_name, activation, eager, rng):
    config = UNetConfig(filters=2, depth=1, outputs=2, activation=activation)
    model = build_unet(config)
    model.compile(optimizer="adam", loss=losses.get_loss(loss_name, activation),
                  metrics=losses.get_metrics(activation), run_eagerly=eager)
    x = rng.random((2, 8, 8, 1), dtype=np.float32)
    y = _masks(rng)
    if activation == "softmax":
        y = np.stack([y[..., 0], 1 - y[..., 0]], axis=-1)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"]) and 0 <= logs["f1"] <= 1


def test_dropout_after_the_deepest_encoder_level_and_the_bottleneck_only_in_training():
    config = UNetConfig(**TINY)
    model = build_unet(config, dropout=0.5)
    assert [layer.name for layer in model.layers if "dropout" in layer.name] == ["enc1_dropout",
                                                                                "center_dropout"]
    plain = build_unet(config)
    plain.set_weights(model.get_weights())  # dropout has no weights: same network otherwise
    x = np.random.default_rng(0).random((1, 16, 16, 1), dtype=np.float32)
    np.testing.assert_allclose(model.predict_on_batch(x), plain.predict_on_batch(x), atol=1e-6)
