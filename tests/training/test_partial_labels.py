"""Training from partial labels: patches always hold annotated voxels, targets carry the mask,
empty samples are refused, and unannotated voxels teach nothing."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
from synthetic_data import synthetic_volume
from training_data import tiny_unet, write_dataset

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "2")

from deepscem.config import TrainConfig
from deepscem.dataset import Dataset
from deepscem.errors import DatasetError
from deepscem.training.sampler import PatchSampler
from deepscem.training.trainer import train

SHAPE = (10, 32, 32)


def partial_dataset(path, slices=(3, 7), box=True):
    """Sample 'z' annotated on ``slices``, sample 'box' on a small box, sample 'full' all."""
    image, mask = synthetic_volume(SHAPE, seed=1)
    write_dataset(path, {"z": (image, [mask]), "box": (image, [mask]), "full": (image, [mask])})
    with Dataset.open(path, "r+") as ds:
        ds.sample("z").set_annotated_slices(slices)
        if box:
            ds.sample("box").set_annotated_slices([])
            ds.sample("box").mark_annotated((slice(5, 6), slice(20, 23), slice(2, 4)))
    return path


@pytest.mark.parametrize("patch", [(1, 8, 8), (3, 8, 8)])
@pytest.mark.parametrize("focus", [0.0, 0.7])
def test_every_patch_holds_annotated_voxels(tmp_path, patch, focus):
    path = partial_dataset(tmp_path / "p.hdf5")
    rng = np.random.default_rng(0)
    with PatchSampler([path], patch, label_focus=focus) as sampler:
        assert sampler.with_mask and sampler.target_channels == 2
        names = [s.name for s in sampler.samples]
        seen = {n: 0 for n in names}
        focused = 0
        for _ in range(300):
            _, target, spec = sampler.patch_at(rng)
            focused += spec.focus_label is not None
            assert target.shape == patch + (2,) and target[..., 1].any()
            name = names[spec.sample]
            seen[name] += 1
            if name == "z" and patch[0] == 1:
                assert spec.origin[0] in (3, 7)  # 2D: annotated slices only
            if name == "box":
                region = tuple(slice(o, o + p) for o, p in zip(spec.origin, patch))
                assert sampler.samples[spec.sample].read_annotated(region).any()
    # samples in proportion to their annotated voxels: full 10 slices, z 2, box 6 voxels
    assert seen["full"] > seen["z"] > seen["box"]
    assert (focused > 150) if focus else (focused == 0)  # label focus works inside the annotation


def test_nothing_annotated_or_no_labels_is_refused(tmp_path):
    image, _ = synthetic_volume(SHAPE, seed=2)
    path = write_dataset(tmp_path / "u.hdf5", {})
    with Dataset.open(path, "r+") as ds:
        ds.add_sample("todo", image)  # no labels: nothing annotated
    with pytest.raises(DatasetError, match="'todo' of u.hdf5 has nothing annotated.*dataset annotated"):
        PatchSampler([path], (1, 8, 8))
    images_only = tmp_path / "i.hdf5"
    with Dataset.create(images_only, "i", 0) as ds:
        ds.add_sample("a", image)
    with pytest.raises(DatasetError, match="images only"):
        PatchSampler([images_only], (1, 8, 8))


def test_fully_labelled_data_keep_plain_targets(tmp_path):
    image, mask = synthetic_volume(SHAPE, seed=1)
    path = write_dataset(tmp_path / "f.hdf5", {"a": (image, [mask])})
    with PatchSampler([path], (1, 8, 8)) as sampler:
        assert not sampler.with_mask and sampler.patch_at(np.random.default_rng(0))[1].shape == (1, 8, 8, 1)


def quick(**kw) -> TrainConfig:
    values = dict(batch_size=2, patch=(4, 16, 16), steps_per_epoch=3, epochs=1, validation_steps=1,
                  label_focus=0.0, seed=0)
    values.update(kw)
    return TrainConfig(**values)


def three_ways(tmp_path):
    """One volume with objects on every slice, annotated on {3, 7}: labels true everywhere
    ("truth"), blank off the annotated slices ("blank"), and the naive way: blank off {3, 7}
    and no annotated layer, i.e. taught as background ("naive")."""
    image, mask = synthetic_volume(SHAPE, seed=4)
    assert mask[[0, 1, 2, 4, 5, 6, 8, 9]].any()  # objects on unannotated slices
    blank = np.zeros_like(mask)
    blank[[3, 7]] = mask[[3, 7]]
    paths = {}
    for name, labels, slices in (("truth", mask, [3, 7]), ("blank", blank, [3, 7]), ("naive", blank, None)):
        paths[name] = write_dataset(tmp_path / f"{name}.hdf5", {"s": (image, [labels])})
        if slices:
            with Dataset.open(paths[name], "r+") as ds:
                ds.sample("s").set_annotated_slices(slices)
    return image, mask, paths


@pytest.mark.parametrize("loss", ["dice", "crossentropy", "mse", "dice+boundarycrossentropy",
                                  "dice+topkcrossentropy"])
def test_unannotated_voxels_give_no_gradient(tmp_path, loss):
    """3D patches straddle annotated and unannotated slices: whatever the labels say off the
    annotated slices, the gradient is the same; the naive way's is not."""
    import tensorflow as tf

    from deepscem.models.losses import get_loss
    from deepscem.training.sequence import PatchSequence

    _, _, paths = three_ways(tmp_path)
    keras.utils.set_random_seed(1)
    model, _ = tiny_unet(dim=3, filters=2, normalization="none")
    loss_fn = get_loss(loss, "sigmoid")
    grads = {}
    for name, path in paths.items():
        with PatchSampler([path], (4, 16, 16)) as sampler:
            x, y = PatchSequence(sampler, 4, 1, dim=3, seed=0)[0]
        assert y.shape[-1] == (1 if name == "naive" else 2)
        with tf.GradientTape() as tape:
            value = loss_fn(y, model(x, training=True))
        grads[name] = [g.numpy() for g in tape.gradient(value, model.trainable_weights)]
    assert all(np.array_equal(a, b) for a, b in zip(grads["truth"], grads["blank"]))
    assert not all(np.allclose(a, b) for a, b in zip(grads["truth"], grads["naive"]))


@pytest.mark.slow
def test_unannotated_slices_teach_nothing(tmp_path):
    """Sample annotated on slices {3, 7}; its other slices hold objects. Whatever their labels say
    (the objects, or background as in the naive way), masked training ends with the same
    weights and validation loss (3D); and a 2D model trained on {3, 7} predicts the objects of
    the other slices better (IoU) than one trained the naive way (taught as background) with
    cross-entropy. (With Dice alone the naive way was not worse on these easy blobs: IoU 0.79
    against 0.74; the weights equality holds for every loss, see the gradient test.)"""
    image, mask, paths = three_ways(tmp_path)
    runs = {}
    for name, path in paths.items():
        keras.utils.set_random_seed(1)  # the same start every time
        model, info = tiny_unet(dim=3, filters=2, normalization="none")
        result = train(model, info, [path], [path], quick(), run_eagerly=True)
        assert result.stopped_reason == "completed"
        runs[name] = result.model.get_weights()
        runs[name + "_val"] = result.history["val_loss"][0]
    assert all(np.array_equal(a, b) for a, b in zip(runs["truth"], runs["blank"]))
    assert runs["truth_val"] == runs["blank_val"]  # validation scores annotated voxels only
    assert not all(np.array_equal(a, b) for a, b in zip(runs["truth"], runs["naive"]))

    others = [0, 1, 2, 4, 5, 6, 8, 9]
    scores = {}
    for name in ("blank", "naive"):
        keras.utils.set_random_seed(2)
        model, info = tiny_unet(dim=2, filters=8, depth=2, normalization="none")
        config = quick(loss="crossentropy", patch=(1, 16, 16), steps_per_epoch=40, batch_size=8,
                       validation_steps=0, label_focus=0.5, learning_rate=3e-3)
        model = train(model, info, [paths[name]], None, config).model
        x = (image[others] - image.min()) / np.ptp(image)
        pred = model.predict_on_batch(x[..., None].astype(np.float32))
        found, truth = pred[..., 0] >= 0.5, mask[others] > 0
        scores[name] = float((found & truth).sum() / max(1, (found | truth).sum()))  # IoU
    assert scores["blank"] > scores["naive"] + 0.05, scores
