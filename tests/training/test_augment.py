"""Intensity augmentation and EM section defects (deepscem.training.augment)."""

import numpy as np

from deepscem.training.augment import (
    Augmentation,
    add_noise,
    augment,
    blur,
    deform,
    deformation_grid,
    jitter_intensity,
    section_defects,
    translate,
)

ONLY = dict(gamma=1.0, contrast=0.0, brightness=0.0, noise_probability=0.0, blur_probability=0.0)


def _image(rng, shape=(3, 32, 32)):
    return (0.25 + 0.5 * rng.random(shape)).astype(np.float32)


def test_each_intensity_change_alone(rng):
    image = _image(rng)
    same = jitter_intensity(image, rng, Augmentation(intensity=True, **ONLY))
    assert np.allclose(same, image, atol=1e-6)  # everything off: unchanged
    brighter = [jitter_intensity(image, rng, Augmentation(**{**ONLY, "brightness": 0.2})) for _ in range(20)]
    shifts = [float((b - image).mean()) for b in brighter]
    assert max(abs(s) for s in shifts) <= 0.2 + 1e-6 and np.std(shifts) > 0.02
    assert all(np.allclose(b - image, s, atol=1e-5) for b, s in zip(brighter, shifts))  # a uniform shift
    stretched = jitter_intensity(image, np.random.default_rng(1), Augmentation(**{**ONLY, "contrast": 0.5}))
    assert np.isclose(stretched.mean(), image.mean(), atol=1e-4)
    assert not np.isclose(stretched.std(), image.std())
    gamma = jitter_intensity(image, np.random.default_rng(3), Augmentation(**{**ONLY, "gamma": 2.0}))
    order = np.argsort(image.ravel())
    assert np.all(np.diff(gamma.ravel()[order]) >= -1e-6) and not np.allclose(gamma, image)  # monotone
    noisy = jitter_intensity(image, rng, Augmentation(**{**ONLY, "noise": 0.1, "noise_probability": 1.0}))
    assert 0.0 < float((noisy - image).std()) <= 0.1
    blurred = jitter_intensity(image, rng, Augmentation(**{**ONLY, "blur": 2.0, "blur_probability": 1.0}))
    assert blurred.std() < 0.8 * image.std() and np.isclose(blurred.mean(), image.mean(), atol=0.01)
    for out in (brighter[0], stretched, gamma, noisy, blurred):
        assert out.dtype == np.float32 and out.shape == image.shape and 0 <= out.min() and out.max() <= 1


def test_blur_is_per_slice_and_noise_has_the_asked_sigma(rng):
    image = np.zeros((3, 21, 21), np.float32)
    image[1, 10, 10] = 1.0
    out = blur(image, 1.5)
    assert not out[0].any() and not out[2].any()  # nothing leaks between sections
    assert np.isclose(out[1].sum(), 1.0, atol=1e-3) and out[1, 10, 10] < 0.2
    noise = add_noise(np.zeros((4, 64, 64), np.float32), 0.05, rng)
    assert abs(float(noise.std()) - 0.05) < 0.005 and abs(float(noise.mean())) < 0.005


def test_translate_mirrors_the_uncovered_border():
    row = np.arange(4, dtype=np.float32)[None, None, :] * np.ones((1, 3, 1), np.float32)
    assert list(translate(row, 0, 1)[0, 0]) == [1, 0, 1, 2]
    assert list(translate(row, 0, -1)[0, 0]) == [1, 2, 3, 2]
    assert translate(row, 0, 0) is row
    assert translate(np.ones((2, 3, 3, 2)), 2, -2).shape == (2, 3, 3, 2)  # larger than the patch: edge


def test_defects_on_a_2_5d_stack_never_touch_the_centre_slice(rng):
    aug = Augmentation(defects=True, missing_probability=1.0, misalign_probability=1.0, misalign=3)
    image = _image(rng, (5, 16, 16))
    target = (image[2:3] > 0.5).astype(np.float32)[..., None]
    changed = set()
    for _ in range(40):
        out, t = section_defects(image, target, rng, aug)
        assert np.array_equal(out[2], image[2]) and t is target
        changed |= {z for z in range(5) if not np.array_equal(out[z], image[z])}
        blank = [z for z in range(5) if np.ptp(out[z]) == 0]
        assert len(blank) == 1 and np.isclose(out[blank[0]].mean(), image.mean())
    assert changed == {0, 1, 3, 4}


def test_defects_in_3d_keep_image_and_target_in_register(rng):
    aug = Augmentation(defects=True, missing_probability=0.0, misalign_probability=1.0, misalign=4, dim=3)
    image = _image(rng, (6, 24, 24))
    target = (image > 0.5).astype(np.float32)[..., None]
    moved = 0
    for _ in range(20):
        out, t = section_defects(image, target, rng, aug)
        assert t.shape == target.shape and np.array_equal(t[..., 0], (out > 0.5).astype(np.float32))
        moved += not np.array_equal(out, image)
    assert moved >= 15  # dy = dx = 0 is possible but rare
    # a missing section in 3D blanks the image only: the target keeps the labels to learn
    out, t = section_defects(image, target, rng, Augmentation(defects=True, missing_probability=1.0,
                                                              misalign_probability=0.0))
    assert sum(np.ptp(out[z]) == 0 for z in range(6)) == 1 and np.array_equal(t, target)


def test_augment_applies_defects_only_to_stacks_and_flips_2_5d_stacks_in_z(rng):
    aug = Augmentation(defects=True, missing_probability=1.0, misalign_probability=1.0)
    single = _image(rng, (1, 16, 16))
    out, _ = augment(single, single[..., None], rng, aug)
    assert np.array_equal(out, single)
    stack = np.arange(3, dtype=np.float32)[:, None, None] * np.ones((3, 8, 8), np.float32) / 2
    target = np.zeros((1, 8, 8, 1), np.float32)
    orders = set()
    for _ in range(30):
        out, t = augment(stack, target, rng, Augmentation(flip=True))
        assert out.shape == (3, 8, 8) and t.shape == (1, 8, 8, 1)
        orders.add(tuple(out[:, 0, 0]))
    assert orders == {(0.0, 0.5, 1.0), (1.0, 0.5, 0.0)}
    assert Augmentation(defects=True).active and not Augmentation().active


DEFORM_ONLY = dict(deform=True, deform_probability=1.0, rotation=0.0, zoom=1.0, elastic=0.0)


def test_deform_without_rotation_zoom_or_elastic_is_the_identity(rng):
    image = _image(rng)
    target = (rng.random((1, 32, 32, 2)) > 0.5).astype(np.float32)
    out, moved = deform(image, target, rng, Augmentation(**DEFORM_ONLY))
    assert np.allclose(out, image, atol=1e-5) and np.array_equal(moved, target)


def test_deform_rotates_by_the_drawn_angle_and_keeps_image_and_target_in_register(rng):
    # a bright square, labelled where it is: any deformation must move both alike
    image = np.zeros((3, 64, 64), np.float32)
    image[:, 10:30, 36:56] = 1.0
    target = (image[1:2] > 0.5)[..., None].astype(np.float32)
    for seed in range(6):
        aug = dict(DEFORM_ONLY, rotation=180.0, zoom=1.2, elastic=3.0, elastic_spacing=16)
        out, moved = deform(image, target, np.random.default_rng(seed), Augmentation(**aug))
        assert out.shape == image.shape and moved.shape == target.shape and moved.dtype == target.dtype
        assert set(np.unique(moved)) <= {0.0, 1.0}  # nearest neighbour: labels stay labels
        inside = moved[0, ..., 0] > 0
        assert inside.sum() > 100 and np.mean((out[1] > 0.5) != inside) < 0.02  # edges may differ
        assert np.allclose(out[0], out[2])  # every slice of a 2.5D stack moves alike
    # a blob 20 px right of the centre ends up where the drawn angle puts it (the plane large
    # enough that no mirrored copy of the blob rotates in)
    blob = np.zeros((1, 129, 129), np.float32)
    blob[0, 62:67, 82:87] = 1.0
    for seed in range(4):
        angle = np.deg2rad(np.random.default_rng(seed).uniform(-180.0, 180.0))
        out, _ = deform(blob, blob[..., None], np.random.default_rng(seed),
                        Augmentation(**{**DEFORM_ONLY, "rotation": 180.0}))
        yy, xx = np.nonzero(out[0] > 0.5)
        assert np.hypot(yy.mean() - (64 + 20 * np.sin(angle)), xx.mean() - (64 + 20 * np.cos(angle))) < 1.0
    areas = {float(deform(blob, blob[..., None], np.random.default_rng(s),
                          Augmentation(**{**DEFORM_ONLY, "zoom": 1.5}))[1].sum()) for s in range(8)}
    assert len(areas) > 1  # the zoom changes the labelled area


def test_deform_field_is_smooth_and_of_the_asked_size(rng):
    aug = Augmentation(**{**DEFORM_ONLY, "elastic": 4.0, "elastic_spacing": 32})
    fields = [deformation_grid((128, 96), np.random.default_rng(s), aug) for s in range(10)]
    yy, xx = np.meshgrid(np.arange(128), np.arange(96), indexing="ij")
    shifts = np.stack([f - np.stack([yy, xx]) for f in fields])
    assert shifts.shape == (10, 2, 128, 96)
    assert 2.0 < float(shifts.std()) < 6.0  # ~elastic pixels
    assert float(np.abs(np.diff(shifts, axis=-1)).max()) < 1.0  # smooth: neighbours move alike


def test_augment_deforms_on_the_asked_share_of_patches(rng):
    image = _image(rng, (1, 32, 32))
    target = np.zeros((1, 32, 32, 1), np.float32)
    aug = Augmentation(deform=True, deform_probability=0.5)
    changed = sum(not np.allclose(augment(image, target, np.random.default_rng(s), aug)[0], image)
                  for s in range(40))
    assert 10 <= changed <= 30
    assert Augmentation(deform=True).active and not Augmentation().active


def test_augment_views_hold_the_same_values_as_its_contiguous_arrays(rng):
    image = _image(rng, (3, 16, 16))
    target = (image > 0.5).astype(np.float32)[..., None]
    aug = Augmentation(rotate=True, flip=True, dim=3)
    for seed in range(12):
        a, t = augment(image, target, np.random.default_rng(seed), aug)
        va, vt = augment(image, target, np.random.default_rng(seed), aug, contiguous=False)
        assert a.flags.c_contiguous and t.flags.c_contiguous
        assert np.array_equal(a, va) and np.array_equal(t, vt)
