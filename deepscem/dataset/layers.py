"""Layer names inside a sample group: the one place that spells them (a leaf: imports nothing of ours).

``image``; ``label_0000``... (uint8 {0, 1}); ``prediction_0000``... (a model's output);
``label_0000_dt`` (signed distance map); optional ``annotated`` (which voxels are labelled) and
``instance_0000``... (object ids); ``prediction_0000_boundary`` (a boundary model's contour output).

>>> label_name(3), prediction_name(0), distance_name(1)
('label_0003', 'prediction_0000', 'label_0001_dt')
>>> kind_of("label_0002"), kind_of("prediction_0001"), kind_of("label_0001_dt"), kind_of("image")
('label', 'prediction', 'distance', 'image')
>>> index_of("prediction_0012")
12
"""

from __future__ import annotations

import re

IMAGE = "image"
ANNOTATED = "annotated"
DISTANCE_SUFFIX = "_dt"
BOUNDARY_SUFFIX = "_boundary"

_INDEXED = re.compile(r"(label|prediction|instance)_(\d{4})$")
_DISTANCE = re.compile(r"label_(\d{4})_dt$")
_BOUNDARY = re.compile(r"prediction_(\d{4})_boundary$")


def label_name(i: int) -> str:
    return f"label_{int(i):04d}"


def prediction_name(i: int) -> str:
    return f"prediction_{int(i):04d}"


def instance_name(i: int) -> str:
    return f"instance_{int(i):04d}"


def distance_name(i: int) -> str:
    return label_name(i) + DISTANCE_SUFFIX


def boundary_name(i: int) -> str:
    """The boundary output of label ``i`` in a prediction file: ``prediction_0000_boundary``."""
    return prediction_name(i) + BOUNDARY_SUFFIX


def output_layers(outputs: int, targets: str = "label") -> list[str]:
    """Prediction layer names for a model's ``outputs`` channels: ``prediction_XXXX`` each, or
    for a boundary model (``targets`` "label+boundary") the second half ``prediction_XXXX_boundary``.

    >>> output_layers(2, "label+boundary")
    ['prediction_0000', 'prediction_0000_boundary']
    """
    if targets == "label+boundary" and outputs % 2 == 0:
        half = outputs // 2
        return [prediction_name(i) for i in range(half)] + [boundary_name(i) for i in range(half)]
    return [prediction_name(i) for i in range(outputs)]


def kind_of(layer: str) -> str:
    """'image', 'label', 'prediction', 'instance', 'distance', 'boundary', 'annotated' or
    'other'."""
    if layer in (IMAGE, ANNOTATED):
        return layer
    if _DISTANCE.match(layer):
        return "distance"
    if _BOUNDARY.match(layer):
        return "boundary"
    match = _INDEXED.match(layer)
    return match.group(1) if match else "other"


def index_of(layer: str) -> int | None:
    """The label index a ``label_``/``prediction_``/``instance_``/``_dt`` layer refers to, else None."""
    match = _INDEXED.match(layer) or _DISTANCE.match(layer) or _BOUNDARY.match(layer)
    if match is None:
        return None
    return int(match.groups()[-1])


def is_label(layer: str) -> bool:
    return kind_of(layer) == "label"


def is_prediction(layer: str) -> bool:
    return kind_of(layer) == "prediction"


def is_instance(layer: str) -> bool:
    return kind_of(layer) == "instance"
