import csv
import math
import os

import numpy as np
import pytest
from training_data import blob_dataset, tiny_unet

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "2")

from deepscem.config import TrainConfig, micro_batch
from deepscem.errors import ConfigError, DatasetError, ModelError
from deepscem.progress import CancelToken
from deepscem.training.trainer import train


def quick(**kw) -> TrainConfig:
    values = dict(batch_size=2, patch=(1, 16, 16), steps_per_epoch=2, epochs=1, validation_steps=1,
                  label_focus=0.5, seed=0)
    values.update(kw)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    return {
        "one": blob_dataset(d / "one.hdf5", shape=(4, 32, 32), n_samples=2, distance=True),
        "two": blob_dataset(d / "two.hdf5", shape=(4, 32, 32), n_labels=2, seed=3),
    }


def test_a_run_until_the_time_limit_reports_steps_without_a_total(data):
    """--auto's 10,000 epochs only stand for 'until the budget': no '3 / 20000 batches'."""
    from deepscem.config import UNTIL_BUDGET_EPOCHS

    seen = []

    def progress(p):
        seen.append(p)
        if p.stage == "train" and p.done == 3:
            token.cancel()

    many = UNTIL_BUDGET_EPOCHS
    for epochs, limit, total in ((many, 5.0, None), (many, None, 2 * many), (3, 5.0, 6)):
        seen.clear()
        token = CancelToken()
        model, info = tiny_unet(dim=2)
        train(model, info, [data["one"]], [data["one"]],
              quick(epochs=epochs, time_limit_minutes=limit, validation_steps=0), progress=progress,
              cancel=token, run_eagerly=True)
        assert {p.total for p in seen if p.stage == "train"} == {total}
        # with a time limit every report says the wall seconds left of it (the CLI's ETA)
        left = [p.eta_s for p in seen if p.stage == "train"]
        if limit:
            assert all(s is not None and 0 <= s <= limit * 60 for s in left)
            assert left == sorted(left, reverse=True)
        else:
            assert set(left) == {None}


@pytest.mark.parametrize("loss", ["dice", "crossentropy", "mse"])
def test_2d_and_3d_training_for_each_loss(data, tmp_path, loss):
    model, info = tiny_unet(dim=2)
    seen = []
    log = tmp_path / "log.csv"
    result = train(model, info, [data["one"]], [data["one"]], quick(loss=loss, epochs=2), log_path=log,
                   progress=seen.append, run_eagerly=True)
    assert result.stopped_reason == "completed" and result.steps_done == 4
    assert [p.done for p in seen if p.stage == "train"] == [1, 2, 3, 4]
    assert all("loss" in p.metrics for p in seen if p.stage == "train")
    rows = list(csv.DictReader(open(log)))
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert {"loss", "val_loss", "lr", "time"} <= set(rows[0])
    assert all(math.isfinite(float(r["val_loss"])) for r in rows)
    assert result.info.patch_size == (1, 16, 16)
    assert result.info.history["config"]["loss"] == loss
    assert len(result.history["loss"]) == 2 and result.best_epoch in (0, 1)

    # 3D, two labels, no validation (validation_steps = 0): keep best watches the training loss
    model, info = tiny_unet(dim=3, outputs=2)
    result = train(model, info, [data["two"]], [data["two"]],
                   quick(loss=loss, patch=(2, 16, 16), steps_per_epoch=1, validation_steps=0),
                   run_eagerly=True)
    assert result.stopped_reason == "completed" and result.best_epoch == 0
    assert "val_loss" not in result.history and len(result.history["loss"]) == 1
    out = result.model.predict_on_batch(np.zeros((1, 2, 16, 16, 1), np.float32))
    assert out.shape == (1, 2, 16, 16, 2) and np.isfinite(out).all()


def test_softmax_and_distance_targets(data):
    model, info = tiny_unet(dim=2, outputs=2, activation="softmax")
    assert train(model, info, [data["two"]], None, quick(loss="crossentropy"),
                 run_eagerly=True).steps_done == 2
    model, info = tiny_unet(dim=2, activation="tanh")
    result = train(model, info, [data["one"]], [data["one"]], quick(loss="mse", target="distance"),
                   run_eagerly=True)
    assert math.isfinite(result.history["val_loss"][0])
    model, info = tiny_unet(dim=2, activation="sigmoid")
    with pytest.raises(ConfigError, match="tanh or linear"):
        train(model, info, [data["one"]], None, quick(loss="mse", target="distance"))


def test_clear_errors_before_training(data, tmp_path):
    model, info = tiny_unet(dim=2, outputs=1)
    with pytest.raises(ModelError, match="1 output.*2 label"):
        train(model, info, [data["two"]], None, quick())
    with pytest.raises(ConfigError, match="larger than sample"):
        train(model, info, [data["one"]], None, quick(patch=(1, 64, 64)))
    with pytest.raises(ConfigError, match="Z = 1"):
        train(model, info, [data["one"]], None, quick(patch=(2, 16, 16)))
    from deepscem.dataset import Dataset

    Dataset.create(tmp_path / "empty.hdf5", "e", 1).close()
    with pytest.raises(DatasetError, match="no samples"):
        train(model, info, [tmp_path / "empty.hdf5"], None, quick())


def test_cancel_stops_after_the_current_batch_and_keeps_the_best(data):
    model, info = tiny_unet(dim=2)
    token = CancelToken()

    def progress(p):
        if p.stage == "train" and p.done == 3:
            token.cancel()

    result = train(model, info, [data["one"]], [data["one"]], quick(epochs=5), progress=progress,
                   cancel=token, run_eagerly=True)
    assert result.stopped_reason == "cancelled" and result.steps_done == 3
    assert result.best_epoch == 0  # epoch 1 was cut short: epoch 0's weights are returned
    out = result.model.predict_on_batch(np.full((1, 16, 16, 1), 0.5, np.float32))
    assert np.isfinite(out).all()


@pytest.mark.parametrize("how,keep_best", [("completed", True), ("completed", False), ("cancelled", False)])
def test_weight_average_is_what_training_returns(data, how, keep_best):
    # Keras' average starts from the weights after the first step (Adam moves each by at most
    # ~ the learning rate); a momentum this close to 1 then keeps it there. Whatever ends the
    # run (last epoch, a stop part-way through, no keep-best), those weights come back.
    model, info = tiny_unet(dim=2)
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    token = CancelToken()

    def progress(p):
        if how == "cancelled" and p.stage == "train" and p.done == 3:
            token.cancel()

    # cancelled in the 2nd of 3 epochs: Keras itself only keeps the average after the last
    config = quick(epochs=3 if how == "cancelled" else 2, learning_rate=0.05, weight_average=1 - 1e-7,
                   keep_best=keep_best)
    result = train(model, info, [data["one"]], [data["one"]], config, progress=progress, cancel=token,
                   run_eagerly=True)
    assert result.stopped_reason == how
    after = {v.path: v.numpy() for v in result.model.trainable_variables}
    assert max(np.abs(after[k] - before[k]).max() for k in before) < 0.05 * 1.01
    # without the average the same run moves the weights
    plain, info = tiny_unet(dim=2)
    w0 = [v.numpy() for v in plain.trainable_variables]
    train(plain, info, [data["one"]], [data["one"]], quick(epochs=2, learning_rate=0.05), run_eagerly=True)
    assert max(np.abs(v.numpy() - w).max() for v, w in zip(plain.trainable_variables, w0)) > 0.05 * 2


def test_weight_decay_shrinks_the_weights(data):
    # decoupled decay: each step multiplies every weight by 1 - lr x wd (here 1/2), on top of
    # Adam's step of at most ~lr (0.01); from the same start the decayed kernels end far smaller
    norms, start = [], tiny_unet(dim=2)[0].get_weights()
    for decay in (0.0, 50.0):
        model, info = tiny_unet(dim=2)
        model.set_weights(start)
        config = quick(epochs=2, learning_rate=0.01, weight_decay=decay, keep_best=False, validation_steps=0)
        result = train(model, info, [data["one"]], None, config, run_eagerly=True)
        kernels = [v.numpy() for v in result.model.trainable_variables if "kernel" in v.path]
        norms.append(np.sqrt(sum((k.astype(np.float64) ** 2).sum() for k in kernels)))
    assert norms[1] < 0.2 * norms[0], norms


@pytest.mark.parametrize("average", [0.0, 0.9])
def test_nan_guard_stops_and_keeps_finite_weights(data, average):
    # a linear output cannot saturate (a sigmoid can, and then its gradient vanishes before
    # anything overflows on some CPUs), so a learning rate this large drives it to inf; the
    # weight average has taken the non-finite weights in by then
    model, info = tiny_unet(dim=2, activation="linear", normalization="none")
    config = quick(loss="mse", learning_rate=1.0, epochs=3, steps_per_epoch=4, keep_best=False,
                   weight_average=average)
    # TrainConfig refuses rates above 10 (a typo); force one far past that to make the run diverge
    object.__setattr__(config, "learning_rate", 1e30)
    result = train(model, info, [data["one"]], None, config)
    assert result.stopped_reason == "nan", result.rows
    assert "finite" in result.message
    assert all(np.isfinite(w).all() for w in result.model.get_weights())
    out = result.model.predict_on_batch(np.full((1, 16, 16, 1), 0.5, np.float32))
    assert np.isfinite(out).all()


def test_inference_mode_matches_training_mode_after_a_short_training(data):
    model, info = tiny_unet(dim=2, filters=4, depth=2)
    from deepscem.training.batchnorm import batchnorm_layers

    for layer in batchnorm_layers(model):
        layer.momentum = 0.99  # the original's setting, which left inference broken
    config = quick(loss="dice", batch_size=4, patch=(1, 32, 32), steps_per_epoch=12, epochs=3,
                   validation_steps=2, rotate=True, flip=True)
    result = train(model, info, [data["one"]], [data["one"]], config)
    assert result.batchnorm_batches > 0
    from deepscem.training.sampler import PatchSampler
    from deepscem.training.sequence import PatchSequence

    # patches normalised as the model trained on them (the normalisation it records)
    with PatchSampler([data["one"]], (1, 32, 32), label_focus=0.5,
                      normalization=result.info.normalization) as sampler:
        x, _ = PatchSequence(sampler, 4, 1, dim=2, seed=123)[0]
    inference = np.asarray(result.model(x, training=False))
    training = np.asarray(result.model(x, training=True))
    assert np.abs(inference - training).mean() < 0.03, np.abs(inference - training).mean()
    # validation (inference mode) tracks training (batch statistics) during the run
    last = result.rows[-1]
    assert abs(last["val_loss"] - last["loss"]) < 0.15, result.rows


def test_mixed_precision_only_when_asked(data):
    import warnings

    from deepscem.training.precision import MIXED, with_policy

    model, info = tiny_unet(dim=2)
    mixed = with_policy(model, MIXED)
    assert {layer.dtype_policy.name for layer in mixed.layers[1:-1]} == {MIXED}
    assert mixed.layers[-1].dtype_policy.name == "float32"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no fast bfloat16" on CPUs without bf16 instructions
        result = train(model, info, [data["one"]], None, quick(mixed_precision=True, validation_steps=0),
                       run_eagerly=True)
    assert result.steps_done == 2
    assert {layer.dtype_policy.name for layer in result.model.layers} == {"float32"}
    out = result.model.predict_on_batch(np.zeros((1, 16, 16, 1), np.float32))
    assert out.dtype == np.float32 and np.isfinite(out).all()


def test_mixed_precision_3d_keeps_two_slice_deep_convolutions_float32(data, monkeypatch):
    """TensorFlow's CPU bfloat16 Conv3D filter gradient is wrong for 2-slice-deep inputs in
    passes of >= 2 patches: those convolutions stay float32, and a 3D model trained in bfloat16
    on 2-slice patches stays finite (it predicted NaN after one crossentropy step before)."""
    import warnings

    import deepscem.devices as devices
    from deepscem.training.precision import float32_layers

    monkeypatch.setattr(devices, "has_gpu", lambda: False)
    model, info = tiny_unet(dim=3, outputs=2)  # depth 1: level 0 at the patch's Z, centre at Z / 2
    level0 = {"enc0_b0_conv", "dec0_b0_conv", "up0"}
    assert level0 <= {layer.name for layer in model.layers}
    assert level0 <= float32_layers(model, 2, (2, 16, 16))
    assert "center_b0_conv" not in float32_layers(model, 2, (2, 16, 16))
    assert "center_b0_conv" in float32_layers(model, 2, (4, 16, 16))
    assert float32_layers(model, 2, (8, 16, 16)) == frozenset()  # Z 8 and 4: bfloat16 throughout
    assert float32_layers(model, 1, (2, 16, 16)) == frozenset()  # one patch per pass: correct
    assert float32_layers(*tiny_unet(dim=2)[:1], 2, (1, 16, 16)) == frozenset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no fast bfloat16" on CPUs without bf16 instructions
        result = train(model, info, [data["two"]], None,
                       quick(loss="crossentropy", patch=(2, 16, 16), steps_per_epoch=1, validation_steps=0,
                             mixed_precision=True), run_eagerly=True)
    assert all(np.isfinite(np.asarray(w)).all() for w in result.model.weights)
    out = result.model.predict_on_batch(np.zeros((1, 2, 16, 16, 1), np.float32))
    assert np.isfinite(out).all()


def test_mixed_precision_by_default_where_bfloat16_is_fast(data, monkeypatch):
    """Not chosen (None): bfloat16 for 2D models where the device computes it fast, float32
    elsewhere and for 3D models; the history records which was used."""
    import deepscem.training.precision as precision_module

    assert TrainConfig().mixed_precision is None
    for fast in (False, True):
        monkeypatch.setattr(precision_module, "bf16_supported", lambda fast=fast: fast)
        model, info = tiny_unet(dim=2)
        result = train(model, info, [data["one"]], None, quick(validation_steps=0), run_eagerly=True)
        assert result.info.history["config"]["mixed_precision"] is fast
        assert result.steps_done == 2
    model, info = tiny_unet(dim=3)  # 3D: float32 unless asked
    result = train(model, info, [data["one"]], None, quick(patch=(2, 16, 16), validation_steps=0),
                   run_eagerly=True)
    assert result.info.history["config"]["mixed_precision"] is False


def test_time_limit_stops_after_the_batch_that_crosses_it(data):
    model, info = tiny_unet(dim=2)
    result = train(model, info, [data["one"]], [data["one"]],
                   quick(epochs=50, time_limit_minutes=1e-4), run_eagerly=True)
    assert result.stopped_reason == "time limit" and result.steps_done == 1
    assert "time limit" in result.message and "kept the best weights" in result.message
    model, info = tiny_unet(dim=2)
    result = train(model, info, [data["one"]], [data["one"]],
                   quick(epochs=50, time_limit_minutes=1e-4, keep_best=False), run_eagerly=True)
    assert "kept the last weights" in result.message  # what --auto keeps


def test_cosine_schedule_decays_the_learning_rate_over_the_run(data):
    model, info = tiny_unet(dim=2)
    result = train(model, info, [data["one"]], None,
                   quick(epochs=4, validation_steps=0, learning_rate=1e-2, lr_schedule="cosine"),
                   run_eagerly=True)
    lrs = result.history["lr"]
    assert len(lrs) == 4 and all(a > b for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] < 0.5e-2


def test_schedule_and_limit_are_validated():
    with pytest.raises(ConfigError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")
    with pytest.raises(ConfigError, match="time_limit"):
        TrainConfig(time_limit_minutes=0)


def test_micro_batches_accumulate_into_one_update_per_step(data):
    model, info = tiny_unet(dim=2)  # float32: the model itself is compiled (bfloat16 compiles a clone)
    seen = []
    result = train(model, info, [data["one"]], [data["one"]],
                   quick(batch_size=4, micro_batch_size=2, steps_per_epoch=3, mixed_precision=False),
                   progress=seen.append,
                   run_eagerly=True)
    assert result.stopped_reason == "completed" and result.steps_done == 3
    assert [p.done for p in seen if p.stage == "train"] == [1, 2, 3]  # steps, not passes
    assert int(model.optimizer.iterations) == 3  # one weight update per step ...
    assert int(model.optimizer._iterations) == 6  # ... from two passes of 2 patches each
    assert result.info.history["micro_batch"] == 2
    # 8 patches per step done (128 at most), in passes of the training size
    assert result.batchnorm_batches == 3 * 8 // 2
    out = result.model.predict_on_batch(np.full((1, 16, 16, 1), 0.5, np.float32))
    assert np.isfinite(out).all()


def test_micro_batch_size_auto_and_checked():
    autos = [micro_batch(TrainConfig(batch_size=b), gpu=False) for b in (8, 6, 4, 5, 1, 16)]
    assert autos == [2, 2, 2, 5, 1, 2]
    assert micro_batch(TrainConfig(batch_size=8), gpu=True) == 8
    assert micro_batch(TrainConfig(batch_size=8, micro_batch_size=8), gpu=False) == 8
    assert micro_batch(TrainConfig(batch_size=8, micro_batch_size=2), gpu=True) == 2
    with pytest.raises(ConfigError, match="divide batch_size"):
        TrainConfig(batch_size=8, micro_batch_size=3)
    with pytest.raises(ConfigError, match="divide batch_size"):
        TrainConfig(batch_size=4, micro_batch_size=8)


def test_instance_normalization_trains_per_patch_and_saves(data, tmp_path):
    from deepscem.models.storage import load_model, save_model

    model, info = tiny_unet(dim=2, filters=4, depth=2, normalization="instance")
    config = quick(batch_size=2, patch=(1, 32, 32), steps_per_epoch=3, epochs=1, validation_steps=0)
    result = train(model, info, [data["one"]], None, config)
    assert result.steps_done == 3 and result.batchnorm_batches == 0  # nothing to recompute
    x = np.random.default_rng(1).random((2, 32, 32, 1), dtype=np.float32)
    # each patch is normalised by its own statistics: its output ignores the batch around it,
    # in training mode as in inference
    both = np.asarray(result.model(x, training=True))
    alone = np.asarray(result.model(x[:1], training=True))
    np.testing.assert_allclose(both[:1], alone, atol=1e-5)
    path = save_model(result.model, tmp_path / "instance.keras", result.info)
    again, again_info = load_model(path)
    assert again_info.unet.normalization == "instance"
    np.testing.assert_allclose(np.asarray(again.predict_on_batch(x)),
                               np.asarray(result.model.predict_on_batch(x)), atol=1e-5)
