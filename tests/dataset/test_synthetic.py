import numpy as np

from deepscem.dataset.synthetic import em_like_volume


def test_em_like_volume_is_seeded_and_labelled():
    image, label = em_like_volume((4, 64, 64), seed=3)
    again, _ = em_like_volume((4, 64, 64), seed=3)
    other, _ = em_like_volume((4, 64, 64), seed=4)
    assert image.shape == label.shape == (4, 64, 64)
    assert image.dtype == np.uint8 and label.dtype == np.uint8
    assert set(np.unique(label)) <= {0, 1}
    assert np.array_equal(image, again) and not np.array_equal(image, other)
    assert 0.01 < label.mean() < 0.5
    # Mitochondria are darker than the cytoplasm on average: the task is learnable.
    assert image[label == 1].mean() < image[label == 0].mean() - 20
