"""Automatic configuration from the data: its choices on small synthetic shapes."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from training_data import write_dataset

from deepscem.config import TrainConfig
from deepscem.training.autoconfig import (
    CONTEXT_ANISOTROPIC,
    CONTEXT_ISOTROPIC,
    DataSummary,
    apply,
    choose,
    for_model,
    measure_anisotropy,
    summarize,
)


def field(shape, every: int, seed=0):
    """A smooth random volume (same smoothness in Z, Y, X), keeping every ``every``-th slice:
    anisotropy ~ ``every``."""
    rng = np.random.default_rng(seed)
    full = gaussian_filter(rng.standard_normal((shape[0] * every, *shape[1:])), 3.0)
    return full[::every]


@pytest.mark.parametrize("every, low, high", [(1, 0.9, 1.6), (6, 4.0, 8.0)])
def test_anisotropy_is_measured_from_slice_correlations(every, low, high):
    corr, aniso = measure_anisotropy(field((8, 96, 96), every))
    assert low <= aniso <= high
    assert (corr > 0.9) == (every == 1)


def summary(shapes, aniso=None, corr=None):
    return DataSummary(shapes=shapes, voxel_sizes=[None] * len(shapes), slice_correlation=corr,
                       anisotropy=aniso, anisotropy_source="measured", n_labels=1)


def test_choices_for_stacks_single_slices_and_gpus():
    iso = choose(summary([(165, 512, 640)], 1.0, 0.88), validation_given=False)
    assert iso.dim == 2 and iso.context == CONTEXT_ISOTROPIC and iso.patch == (1, 256, 256)
    assert iso.batch_size == 2 and iso.micro_batch == 2  # 1.5 GiB: 900 + 2 x 180 MiB fits
    assert iso.holdout == 0.15 and iso.keep_best_on == "score" and iso.time_limit_minutes == 15
    assert iso.keep_best is False and any("final weights" in r for r in iso.reasons)
    assert any("held back" in r for r in iso.reasons) and len(iso.lines()) == len(iso.reasons)
    thin = choose(summary([(1, 100, 90)]), validation_given=False)
    assert thin.dim == 2 and thin.context == 0 and thin.patch == (1, 80, 80)
    assert thin.holdout == 0.0 and any("too thin" in r for r in thin.reasons)
    gpu = choose(summary([(64, 512, 512)], 1.2, 0.9), validation_given=True, gpu=True)
    assert gpu.dim == 3 and gpu.context == 0 and gpu.patch == (32, 128, 128) and gpu.holdout == 0.0
    assert gpu.micro_batch == gpu.batch_size
    aniso_gpu = choose(summary([(64, 512, 512)], 9.0, 0.34), validation_given=True, gpu=True)
    assert aniso_gpu.dim == 2  # serial sections stay 2D even on a GPU
    big = choose(summary([(20, 1024, 1024)], 9.0, 0.34), validation_given=False, memory_gib=4)
    assert big.micro_batch == big.batch_size == 2 and big.context == CONTEXT_ANISOTROPIC
    tight = choose(summary([(20, 1024, 1024)], 9.0, 0.34), validation_given=False, memory_gib=1)
    assert tight.batch_size == 2 and tight.micro_batch == 1  # 900 + 180 MiB > 1 GiB: one at a time
    mine = choose(summary([(20, 1024, 1024)], 9.0), validation_given=False, context=0, dim=2, minutes=5)
    assert mine.context == 0 and mine.time_limit_minutes == 5


def test_summarize_and_apply(tmp_path):
    volume = (field((6, 64, 64), 1) * 40 + 128).clip(0, 255).astype(np.uint8)
    path = write_dataset(tmp_path / "a.hdf5", {"a": (volume, [(volume > 128).astype(np.uint8)]),
                                               "b": (volume[:1], [(volume[:1] > 128).astype(np.uint8)])})
    found = summarize([path])
    assert found.shapes == [(6, 64, 64), (1, 64, 64)] and found.anisotropy_source == "measured"
    assert found.anisotropy < 2 and found.n_labels == 1
    auto = choose(found, validation_given=False)
    config = apply(TrainConfig(), auto)
    assert config.patch == (1, 64, 64) and config.holdout == auto.holdout
    assert config.lr_schedule == "cosine" and config.time_limit_minutes == 15
    # epochs of 256 patches, validation passes of 64 (none when the config has no validation)
    assert (config.batch_size, config.steps_per_epoch, config.validation_steps) == (2, 128, 32)
    assert apply(TrainConfig(validation_steps=0), auto).validation_steps == 0
    on_gpu = apply(TrainConfig(), choose(found, validation_given=False, gpu=True))
    assert (on_gpu.batch_size, on_gpu.steps_per_epoch, on_gpu.validation_steps) == (16, 32, 4)
    assert auto.to_dict()["patch"] == [1, 64, 64]


def test_for_model_keeps_the_model_and_says_when_its_context_is_not_the_data_s(tmp_path):
    volume = (field((6, 64, 64), 1) * 40 + 128).clip(0, 255).astype(np.uint8)
    path = write_dataset(tmp_path / "iso.hdf5", {"a": (volume, [(volume > 128).astype(np.uint8)])})
    other = write_dataset(tmp_path / "other.hdf5", {"a": (volume, [(volume > 128).astype(np.uint8)])})
    choice, hint = for_model([path], [], dim=2, context=0)
    assert choice.context == 0 and choice.holdout == 0.15  # the model's context; slices held back
    assert "3 slices" in hint and "--context 1" in hint  # an isotropic stack calls for 2.5D
    same, none = for_model([path], [path], dim=2, context=CONTEXT_ISOTROPIC)
    assert same.holdout == 0.15 and none is None  # the training file as validation: held back too
    given, _ = for_model([path], [other], dim=2, context=1)
    assert given.holdout == 0.0
    vol, no_hint = for_model([path], [], dim=3, context=0)
    assert vol.dim == 3 and vol.patch[0] > 1 and no_hint is None  # 3D models have no 2.5D context
