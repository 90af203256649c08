import numpy as np
import pytest
from training_data import blob_dataset, write_dataset

from deepscem.errors import ConfigError, DatasetError
from deepscem.training.augment import Augmentation, augment
from deepscem.training.sampler import ForegroundIndex, PatchSampler
from deepscem.training.sequence import PatchSequence


@pytest.fixture
def two_files(tmp_path):
    a = blob_dataset(tmp_path / "a.hdf5", shape=(5, 30, 34), n_samples=2, n_labels=2)
    b = blob_dataset(tmp_path / "b.hdf5", shape=(1, 24, 40), n_labels=2, seed=5)  # a 2D sample
    return a, b


def test_3d_patches_shapes_dtypes_and_bounds(two_files, rng):
    with PatchSampler(two_files[:1], (3, 16, 16)) as sampler:
        assert sampler.n_labels == 2 and len(sampler.samples) == 2
        for _ in range(40):
            image, target, spec = sampler.patch_at(rng)
            assert image.shape == (3, 16, 16) and image.dtype == np.float32
            assert target.shape == (3, 16, 16, 2) and target.dtype == np.float32
            shape = sampler.samples[spec.sample].shape
            assert all(0 <= o and o + p <= s for o, p, s in zip(spec.origin, sampler.patch, shape))
    # the Z=1 sample of b.hdf5 cannot hold a Z=3 patch: the error names it and both sizes
    with pytest.raises(ConfigError, match=r"s0.*b\.hdf5.*\(1, 24, 40\)"):
        PatchSampler(two_files, (3, 16, 16))


def test_2d_patches_from_3d_and_2d_samples(two_files, rng):
    with PatchSampler(two_files, (1, 24, 24)) as sampler:
        seen = set()
        for _ in range(60):
            image, target, spec = sampler.patch_at(rng)
            assert image.shape == (1, 24, 24) and image.dtype == np.float32
            assert target.shape == (1, 24, 24, 2) and target.dtype == np.float32
            assert 0.0 <= image.min() and image.max() <= 1.0
            assert set(np.unique(target)) <= {0.0, 1.0}
            shape = sampler.samples[spec.sample].shape
            assert all(0 <= o and o + p <= s for o, p, s in zip(spec.origin, sampler.patch, shape))
            seen.add(spec.sample)
        assert seen == {0, 1, 2}
        # the patch is exactly the stored data at its origin
        sample = sampler.samples[spec.sample]
        region = tuple(slice(o, o + p) for o, p in zip(spec.origin, sampler.patch))
        assert np.array_equal(image, sample.read_image(region))


def test_patch_as_large_as_the_volume(tmp_path, rng):
    path = blob_dataset(tmp_path / "d.hdf5", shape=(4, 20, 28))
    with PatchSampler([path], (4, 20, 28), label_focus=1.0) as sampler:
        for _ in range(5):
            image, target, spec = sampler.patch_at(rng)
            assert spec.origin == (0, 0, 0) and image.shape == (4, 20, 28)
            assert spec.focus_label == 0


def test_samples_are_drawn_in_proportion_to_volume(tmp_path, rng):
    path = write_dataset(tmp_path / "v.hdf5", {
        "big": (np.zeros((1, 64, 64), np.uint8), [np.zeros((1, 64, 64), np.uint8)]),
        "small": (np.zeros((1, 32, 32), np.uint8), [np.zeros((1, 32, 32), np.uint8)]),
    })
    with PatchSampler([path], (1, 8, 8)) as sampler:
        draws = np.array([sampler.draw(rng).sample for _ in range(2000)])
        big = sampler.samples.index(next(s for s in sampler.samples if s.name == "big"))
        assert abs(np.mean(draws == big) - 0.8) < 0.04


def test_label_focus_fraction_and_rare_labels(tmp_path, rng):
    shape = (6, 64, 64)
    common = np.zeros(shape, np.uint8)
    common[1:5, 20:44, 20:44] = 1          # 6% of voxels
    rare = np.zeros(shape, np.uint8)
    rare[3, 40, 12] = 1                     # a single voxel
    image = np.random.default_rng(1).integers(0, 255, shape).astype(np.uint8)
    path = write_dataset(tmp_path / "f.hdf5", {"s": (image, [common, rare])}, n_labels=2)
    with PatchSampler([path], (1, 16, 16), label_focus=0.6) as sampler:
        focused, centred_rare, n = 0, 0, 3000
        for _ in range(n):
            spec = sampler.draw(rng)
            centre = tuple(o + p // 2 for o, p in zip(spec.origin, sampler.patch))
            if spec.focus_label is not None:
                focused += 1
                lab = common if spec.focus_label == 0 else rare
                assert lab[centre] == 1
                centred_rare += spec.focus_label == 1
        assert abs(focused / n - 0.6) < 0.03
        assert abs(centred_rare / focused - 0.5) < 0.04   # rare label as often as the common one


def test_foreground_index_counts_match_the_label(tmp_path):
    _, mask = blob_dataset.__globals__["synthetic_volume"]((9, 70, 75), seed=3)
    path = write_dataset(tmp_path / "i.hdf5", {"s": (mask * 100, [mask])})
    from deepscem.dataset import Dataset

    with Dataset.open(path) as ds:
        index = ForegroundIndex.build(ds.sample("s"), ["label_0000"])
        assert index.total(0) == int(mask.sum())
        rng = np.random.default_rng(0)
        for _ in range(50):
            assert mask[index.draw(0, ds.sample("s"), "label_0000", rng)] == 1


def test_no_foreground_falls_back_to_random_patches(tmp_path, rng):
    path = write_dataset(tmp_path / "e.hdf5", {"s": (np.ones((2, 16, 16), np.uint8),
                                                     [np.zeros((2, 16, 16), np.uint8)])})
    with PatchSampler([path], (1, 8, 8), label_focus=1.0) as sampler:
        assert sampler.draw(rng).focus_label is None
        image, _, _ = sampler.patch_at(rng)
        assert np.all(image == 0)  # constant image -> zeros, not NaN


def test_empty_dataset_and_missing_distance_maps(tmp_path):
    from deepscem.dataset import Dataset

    Dataset.create(tmp_path / "empty.hdf5", "e", 1).close()
    with pytest.raises(DatasetError, match="no samples"):
        PatchSampler([tmp_path / "empty.hdf5"], (1, 8, 8))
    path = blob_dataset(tmp_path / "d.hdf5")
    with pytest.raises(DatasetError, match="label_0000_dt"):
        PatchSampler([path], (1, 8, 8), target="distance")


def test_distance_targets(tmp_path, rng):
    path = blob_dataset(tmp_path / "d.hdf5", distance=True)
    with PatchSampler([path], (2, 16, 16), target="distance") as sampler:
        _, target, _ = sampler.patch_at(rng)
        assert target.dtype == np.float32 and target.min() >= -1 and target.max() <= 1
        assert target.min() < 0 < target.max() or np.all(target < 0)


def test_augment_keeps_image_and_target_aligned(rng):
    image = rng.random((3, 8, 8)).astype(np.float32)
    target = (image > 0.5).astype(np.float32)[..., None]
    for _ in range(20):
        a, t = augment(image, target, rng, Augmentation(rotate=True, flip=True, dim=3))
        assert a.shape == image.shape and t.shape == target.shape
        assert np.array_equal(t[..., 0], (a > 0.5).astype(np.float32))
    rect = rng.random((1, 8, 12)).astype(np.float32)
    for _ in range(10):
        a, _ = augment(rect, rect[..., None], rng, Augmentation(rotate=True))
        assert a.shape == rect.shape
    jittered, t = augment(image, target, rng, Augmentation(intensity=True))
    assert jittered.dtype == np.float32 and 0 <= jittered.min() and jittered.max() <= 1
    assert not np.array_equal(jittered, image) and np.array_equal(t, target)


def test_sequence_batches(tmp_path):
    path = blob_dataset(tmp_path / "d.hdf5", shape=(4, 32, 32), n_labels=2)
    with PatchSampler([path], (1, 16, 16), label_focus=0.5) as sampler:
        seq = PatchSequence(sampler, 3, 5, dim=2, augmentation=Augmentation(rotate=True, flip=True), seed=1)
        x, y = seq[0]
        assert x.shape == (3, 16, 16, 1) and y.shape == (3, 16, 16, 2) and len(seq) == 5
        assert np.array_equal(seq[0][0], x)  # same (seed, epoch, index) -> same batch
        seq.on_epoch_end()
        assert not np.array_equal(seq[0][0], x)
    with PatchSampler([path], (2, 16, 16)) as sampler:
        x, y = PatchSequence(sampler, 2, 1, dim=3, seed=0)[0]
        assert x.shape == (2, 2, 16, 16, 1) and y.shape == (2, 2, 16, 16, 2)
