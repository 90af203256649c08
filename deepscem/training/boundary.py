"""Boundary (contour) targets derived from labels on the fly, for the watershed path.

A model created with boundary outputs (``model create --boundary``) predicts, next to each
label's mask, the label's object boundaries; seeds for the instance watershed are then the
mask minus the boundary (:mod:`deepscem.postprocessing.instances`), as in
pytorch_connectomics' U3D-BC targets. The boundary of a voxel is set when a neighbour
within ``width`` voxels carries a different value: background or, when the sample has an
``instance_XXXX`` layer, another object, so two touching objects get a boundary between them.

2D patches (Z = 1) get in-plane boundaries only (what a 2D model can see).

>>> ids = np.zeros((1, 1, 8), np.uint32); ids[0, 0, 1:4] = 1; ids[0, 0, 4:7] = 2
>>> boundary_target(ids, width=1)[0, 0].tolist()
[0, 1, 0, 1, 1, 0, 1, 0]
"""

from __future__ import annotations

import numpy as np

#: Boundary band in voxels on each side of an object's outline: 2 gives a 4-voxel line between
#: touching objects, wide enough for a model to predict where two membranes meet.
BOUNDARY_WIDTH = 2


def boundary_target(ids: np.ndarray, width: int = 1) -> np.ndarray:
    """uint8 {0, 1} (Z, Y, X): foreground voxels of ``ids`` (object ids or a {0, 1} mask)
    within ``width`` voxels (face steps) of a voxel with another value."""
    from scipy import ndimage

    ids = np.asarray(ids)
    axes = [a for a in range(3) if ids.shape[a] > 1 and not (a == 0 and ids.shape[0] == 1)]
    structure = np.zeros((3, 3, 3), bool)
    structure[1, 1, 1] = True
    for a in axes:
        index = [1, 1, 1]
        for k in (0, 2):
            index[a] = k
            structure[tuple(index)] = True
    iterations = max(1, int(width))
    # a voxel is on a boundary when the largest and smallest id around it differ
    high = ndimage.grey_dilation(ids, footprint=structure, mode="nearest")
    low = ndimage.grey_erosion(ids, footprint=structure, mode="nearest")
    edge = high != low
    if iterations > 1:
        edge = ndimage.binary_dilation(edge, structure, iterations=iterations - 1)
    return (edge & (ids != 0)).astype(np.uint8)


def sample_boundaries(sample, region, n_labels: int) -> np.ndarray:
    """Boundary targets (Z, Y, X, n_labels) float32 of a patch ``region`` of ``sample``: from
    its ``instance_XXXX`` layer when it has one (boundaries between touching objects too),
    else from ``label_XXXX`` (object outlines only)."""
    from deepscem.dataset.layers import instance_name, label_name

    shape = tuple(s.stop - s.start for s in region)
    out = np.empty(shape + (n_labels,), np.float32)
    for i in range(n_labels):
        layer = instance_name(i) if instance_name(i) in sample.group else label_name(i)
        out[..., i] = boundary_target(sample.read_layer(layer, region), width=BOUNDARY_WIDTH)
    return out
