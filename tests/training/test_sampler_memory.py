"""Training data held in memory (on a GPU): the same patches as streamed ones, within a budget."""

import numpy as np
import pytest
from test_partial_labels import partial_dataset
from training_data import blob_dataset

from deepscem.config import TrainConfig
from deepscem.training.sampler import PatchSampler, hold_budget


def draws(sampler, seed, n=40):
    rng = np.random.default_rng(seed)
    return [sampler.patch_at(rng) for _ in range(n)]


@pytest.mark.parametrize("kwargs", [
    dict(label_focus=0.6),
    dict(label_focus=0.5, context=1, normalization="percentile 1 99"),
    dict(target="label+boundary", label_focus=0.3),
])
def test_held_samplers_draw_exactly_the_streamed_patches(tmp_path, kwargs):
    path = blob_dataset(tmp_path / "b.hdf5", shape=(6, 40, 36), n_samples=2, n_labels=2)
    patch = (1, 16, 16) if kwargs.get("context") else (2, 16, 16)
    with PatchSampler([path], patch, **kwargs) as streamed, PatchSampler([path], patch, **kwargs) as held:
        assert held.hold_in_memory(held.memory_needed())
        assert all(s._held for s in held.samples) and not any(s._held for s in streamed.samples)
        for (a, ta, sa), (b, tb, sb) in zip(draws(streamed, 3), draws(held, 3)):
            assert sa == sb and np.array_equal(a, b) and np.array_equal(ta, tb)


def test_held_partial_labels_and_their_mask(tmp_path):
    path = partial_dataset(tmp_path / "p.hdf5")
    with PatchSampler([path], (1, 8, 8), label_focus=0.7) as streamed, \
            PatchSampler([path], (1, 8, 8), label_focus=0.7) as held:
        held.hold_in_memory(float("inf"))
        assert "annotated" in held.samples[0]._held
        for (a, ta, _), (b, tb, _) in zip(draws(streamed, 5), draws(held, 5)):
            assert np.array_equal(a, b) and np.array_equal(ta, tb)


def test_the_budget_decides_and_reads_are_copies(tmp_path):
    path = blob_dataset(tmp_path / "b.hdf5", shape=(4, 20, 24), n_labels=2)
    with PatchSampler([path], (1, 8, 8)) as sampler:
        # uint8 image and two uint8 labels
        assert sampler.memory_needed() == 3 * 4 * 20 * 24
        assert not sampler.hold_in_memory(sampler.memory_needed() - 1)
        assert not sampler.samples[0]._held
        assert sampler.hold_in_memory(sampler.memory_needed())
        sample = sampler.samples[0]
        region = (slice(1, 2), slice(3, 11), slice(0, 8))
        first = sample.read_layer("label_0000", region)
        first[...] = 7  # a caller changing its patch must not change what later reads see
        again = sample.read_layer("label_0000", region)
        assert again.max() <= 1 and np.array_equal(again, sample.layer("label_0000")[region])
    assert not sample._held  # closing lets go of the memory


def test_only_a_gpu_holds_data():
    assert hold_budget(False) == 0
    assert hold_budget(True) > 0


def test_training_on_a_gpu_holds_the_files(tmp_path, monkeypatch):
    from training_data import tiny_unet

    import deepscem.training.trainer as trainer

    path = blob_dataset(tmp_path / "b.hdf5", shape=(6, 32, 32))
    held = []
    original = PatchSampler.hold_in_memory

    def spy(self, budget, shared=None):
        held.append((self.role, original(self, budget, shared)))
        return held[-1][1]

    monkeypatch.setattr(PatchSampler, "hold_in_memory", spy)
    model, info = tiny_unet()
    config = TrainConfig(batch_size=2, patch=(1, 16, 16), steps_per_epoch=1, epochs=1, validation_steps=1,
                         holdout=0.3, seed=0)
    stages = []

    def progress(p):
        stages.append(p.stage)

    trainer.train(model, info, [path], None, config, run_eagerly=True, progress=progress)
    assert held == [] and "read into memory" not in stages  # a CPU streams
    monkeypatch.setattr(trainer, "has_gpu", lambda: True)
    result = trainer.train(model, info, [path], None, config, run_eagerly=True, progress=progress)
    assert held == [("training", True), ("validation", True)] and result.steps_done == 1
    assert "read into memory" in stages


def test_the_budget_is_shared_in_turn(tmp_path):
    from deepscem.training.sampler import hold_while_budget_lasts

    a = blob_dataset(tmp_path / "a.hdf5", shape=(4, 20, 24))
    b = blob_dataset(tmp_path / "b.hdf5", shape=(4, 20, 24), seed=3)
    with PatchSampler([a], (1, 8, 8)) as first, PatchSampler([b], (1, 8, 8)) as second:
        need = first.memory_needed()
        assert hold_while_budget_lasts([first, second], 1.5 * need) == need
        assert first.samples[0]._held and not second.samples[0]._held
        assert hold_while_budget_lasts([second], 0) == 0 and not second.samples[0]._held


def test_a_file_two_samplers_open_is_held_once(tmp_path):
    """Training and held-back validation open the same file (here spelt two ways): held once,
    within the budget of one copy, and each still reads what the file holds."""
    from deepscem.training.sampler import hold_while_budget_lasts

    path = blob_dataset(tmp_path / "a.hdf5", shape=(6, 20, 24), n_labels=2)
    other = tmp_path / "x" / ".." / "a.hdf5"
    (tmp_path / "x").mkdir()
    with PatchSampler([path], (1, 8, 8), z_fraction=(0, 0.7), role="training") as train, \
            PatchSampler([other], (1, 8, 8), z_fraction=(0.7, 1), role="validation") as val, \
            PatchSampler([other], (1, 8, 8), z_fraction=(0.7, 1), role="validation") as streamed:
        need = train.memory_needed()
        assert hold_while_budget_lasts([train, val], need) == need
        assert val.memory_needed(shared={}) == need
        assert train.samples[0]._held["image"] is val.samples[0]._held["image"]
        for (a, ta, _), (b, tb, _) in zip(draws(streamed, 2), draws(val, 2)):
            assert np.array_equal(a, b) and np.array_equal(ta, tb)
