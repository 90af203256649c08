"""2.5D sampling and training, held-back validation slices, keep-best on the score."""

import numpy as np
import pytest
from training_data import blob_dataset

from deepscem.config import TrainConfig, UNetConfig
from deepscem.dataset.context import context_indices
from deepscem.errors import ConfigError
from deepscem.training.augment import Augmentation
from deepscem.training.sampler import PatchSampler, z_window
from deepscem.training.sequence import PatchSequence


def test_2_5d_patches_carry_mirrored_neighbours_and_the_centre_target(tmp_path, rng):
    path = blob_dataset(tmp_path / "c.hdf5", shape=(5, 24, 24))
    with PatchSampler([path], (1, 16, 16), context=2, label_focus=0.5) as sampler:
        sample = sampler.samples[0]
        seen = set()
        for _ in range(40):
            image, target, spec = sampler.patch_at(rng)
            assert image.shape == (5, 16, 16) and target.shape == (1, 16, 16, 1)
            z, y, x = spec.origin
            region = (slice(None), slice(y, y + 16), slice(x, x + 16))
            whole = sample.read_image(region)
            assert np.array_equal(image, whole[context_indices(z, 2, 5)])
            assert np.array_equal(target[0, ..., 0], sample.read_layer("label_0000", region)[z])
            seen.add(z)
        assert {0, 4} <= seen  # both ends of the volume were drawn (mirrored context)
        seq = PatchSequence(sampler, 3, 2, dim=2, augmentation=Augmentation(flip=True, defects=True), seed=0)
        x, y = seq[0]
        assert x.shape == (3, 16, 16, 5) and y.shape == (3, 16, 16, 1) and x.flags.c_contiguous
    with pytest.raises(ConfigError, match="context"):
        PatchSampler([path], (2, 16, 16), context=1)


def test_z_windows_keep_training_and_validation_slices_apart(tmp_path, rng):
    assert z_window(165, 1, (0.0, 0.85)) == (0, 140) and z_window(165, 1, (0.85, 1.0)) == (140, 165)
    assert z_window(1, 1, (0.85, 1.0)) == (0, 1) and z_window(20, 1, None) == (0, 20)
    path = blob_dataset(tmp_path / "h.hdf5", shape=(20, 24, 24))
    with PatchSampler([path], (1, 16, 16), label_focus=0.7, z_fraction=(0.0, 0.8)) as train, \
            PatchSampler([path], (1, 16, 16), label_focus=0.7, z_fraction=(0.8, 1.0)) as valid:
        assert {train.patch_at(rng)[2].origin[0] for _ in range(80)} <= set(range(16))
        assert {valid.patch_at(rng)[2].origin[0] for _ in range(40)} <= set(range(16, 20))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    return blob_dataset(tmp_path_factory.mktemp("ctx") / "s.hdf5", shape=(10, 32, 32), n_labels=2)


def test_training_a_2_5d_model_with_held_back_slices_and_keep_best_on_the_score(stack):
    from deepscem.models.storage import model_info_from
    from deepscem.models.unet import build_unet
    from deepscem.training.trainer import train

    config = UNetConfig(filters=2, depth=1, blocks_per_level=1, block="vgg", outputs=2, context=1)
    model = build_unet(config)
    train_config = TrainConfig(batch_size=2, patch=(1, 16, 16), steps_per_epoch=2, epochs=2,
                               validation_steps=1, seed=0, holdout=0.3, keep_best_on="score",
                               defects=True, intensity=True, deform=True, normalization="percentile 1 99")
    result = train(model, model_info_from(model, config), [stack], [stack], train_config, run_eagerly=True)
    assert result.steps_done == 4 and "val_f1" in result.history and result.best_epoch in (0, 1)
    best = int(np.argmax(result.history["val_f1"]))
    assert result.best_epoch == best
    assert result.info.normalization == "percentile 1 99"
    assert result.info.history["config"]["holdout"] == 0.3
    out = result.model.predict_on_batch(np.zeros((1, 16, 16, 3), np.float32))
    assert out.shape == (1, 16, 16, 2) and np.isfinite(out).all()


def test_batch_threads_can_be_niced_and_the_main_thread_is_left_alone(tmp_path):
    import os
    import threading

    from deepscem.training.sequence import _nice_this_thread

    if not hasattr(os, "getpriority"):
        pytest.skip("no per-thread priorities on this platform")
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    _nice_this_thread(3)  # the main thread: unchanged
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
    seen = []

    def worker():
        _nice_this_thread(3)
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [min(19, before + 3)]
