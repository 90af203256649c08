"""Tiny dataset files and models for the training tests (synthetic, a few kB each)."""

from __future__ import annotations

import numpy as np
from synthetic_data import synthetic_volume

from deepscem.dataset import Dataset


def write_dataset(path, samples: dict, n_labels: int = 1, distance: bool = False):
    """samples: name -> (image (Z, Y, X), [label (Z, Y, X) uint8, ...]). Returns ``path``."""
    ds = Dataset.create(path, "test", n_labels)
    try:
        for name, (image, labels) in samples.items():
            ds.add_sample(name, image, list(labels))
    finally:
        ds.close()
    if distance:
        with Dataset.open(path, mode="r+") as ds:
            for name, (_, labels) in samples.items():
                for i in range(len(labels)):
                    ds.distance_transform(name, i, scale=4.0)
    return path


def blob_dataset(path, shape=(4, 32, 32), n_samples=1, n_labels=1, distance=False, seed=0):
    """A dataset of ``n_samples`` blob volumes; label i = the blobs shifted by i voxels in X."""
    samples = {}
    for s in range(n_samples):
        image, mask = synthetic_volume(shape, seed=seed + s)
        samples[f"s{s}"] = (image, [np.roll(mask, i, axis=2) for i in range(n_labels)])
    return write_dataset(path, samples, n_labels, distance)


def tiny_unet(dim=2, outputs=1, activation="sigmoid", normalization="batchnorm", depth=1, filters=4):
    """A real U-Net from deepscem.models, small enough for 1-3 training steps in a test."""
    from deepscem.config import UNetConfig
    from deepscem.models.storage import model_info_from
    from deepscem.models.unet import build_unet

    config = UNetConfig(dim=dim, filters=filters, depth=depth, outputs=outputs, activation=activation,
                        normalization=normalization, blocks_per_level=1, block="vgg")
    model = build_unet(config)
    return model, model_info_from(model, config)
