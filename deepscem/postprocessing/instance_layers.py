"""Instance layers of a dataset: ``instance_XXXX`` (uint32 object ids) from its masks.

For every sample and label index, the mask is ``prediction_XXXX`` (or ``label_XXXX`` with
``source="label"``); a ``prediction_XXXX_boundary`` layer beside it (a boundary model's
output) or a ``label_XXXX_dt`` distance map selects the watershed, else connected
components (see :mod:`deepscem.postprocessing.instances`). Each layer is written under a
temporary name and renamed when complete, so a cancel or a crash never leaves a partial
``instance_XXXX``; the layer's attrs record how it was made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepscem import progress as prog
from deepscem.dataset.layers import (
    boundary_name,
    distance_name,
    index_of,
    instance_name,
    prediction_name,
)
from deepscem.errors import ConfigError, DatasetError
from deepscem.postprocessing.instances import InstanceConfig, InstanceResult, label_instances

PARTIAL = ".partial"


@dataclass(frozen=True)
class InstanceLayer:
    """One written layer: sample, layer name, source layers and the result."""

    sample: str
    layer: str
    mask: str
    boundary: str | None
    result: InstanceResult


def add_instance_layers(dataset, config: InstanceConfig | None = None, *,
                        source: str = "prediction", samples: list[str] | None = None,
                        overwrite: bool = False,
                        progress: prog.ProgressCallback | None = None,
                        cancel: prog.CancelToken | None = None) -> list[InstanceLayer]:
    """Label instances in every (or the named) sample of an open, writable ``dataset``.

    source: "prediction" (``prediction_XXXX``, the default) or "label" (``label_XXXX``).
    Progress counts samples x labels. Returns one record per written layer.
    """
    config = config or InstanceConfig()
    if source not in ("prediction", "label"):
        raise ConfigError(f"instances are made from 'prediction' or 'label' layers, not {source!r}")
    dataset._require_writable()
    names = samples or dataset.sample_names()
    jobs = []
    for name in names:
        sample = dataset.sample(name)
        layers = sample.prediction_layers() if source == "prediction" else sample.label_layers()
        jobs += [(sample, layer) for layer in layers]
    if not jobs:
        raise DatasetError(f"{dataset.path}: no {source} layers to label; "
                           + ("predict first, or use the labels (--from label)"
                              if source == "prediction" else "add labels first"))
    written = []
    for done, (sample, mask_layer) in enumerate(jobs):
        prog.check(cancel)
        report = prog.part(progress, done, len(jobs), f"{sample.name}/{mask_layer}")
        written.append(_label_layer(sample, mask_layer, config, overwrite, report, cancel))
    prog.emit(progress, len(jobs) * 1000, len(jobs) * 1000, "‰", "instances")
    return written


def _label_layer(sample, mask_layer: str, config: InstanceConfig, overwrite: bool, progress,
                 cancel) -> InstanceLayer:
    index = index_of(mask_layer)
    target = instance_name(index)
    if target in sample.group and not overwrite:
        raise DatasetError(f"sample {sample.name!r} already has {target} (made by "
                           f"{sample.layer(target).attrs.get('method', 'an import or by hand')}); "
                           "pass --overwrite to replace it")
    extra = [boundary_name(index)] if mask_layer == prediction_name(index) else []
    extra.append(distance_name(index))
    helper = next((n for n in extra if n in sample.group), None)
    if config.method == "components":
        helper = None
    boundary = sample.layer(helper) if helper and helper.endswith("_boundary") else None
    distance = sample.layer(helper) if helper and helper.endswith("_dt") else None
    mask = sample.layer(mask_layer)
    if boundary is None and distance is None and config.method == "watershed":
        raise ConfigError(f"sample {sample.name!r}: the watershed needs {boundary_name(index)} "
                          f"(a model created with --boundary) or {distance_name(index)}; "
                          "use connected components instead")
    partial = target + PARTIAL
    if partial in sample.group:  # left by a killed run
        del sample.group[partial]
    out = sample.create_layer(partial, np.uint32)
    try:
        result = label_instances(mask, out, boundary=boundary, distance=distance,
                                 config=config, progress=progress, cancel=cancel)
        out.attrs.update({"method": result.method, "source": mask_layer,
                          "helper": helper or "", "threshold": float(config.threshold),
                          "seed_threshold": float(config.seed_threshold),
                          "min_size": int(config.min_size), "objects": int(result.objects)})
        if target in sample.group:
            del sample.group[target]
        sample.group.move(partial, target)
    except BaseException:
        if partial in sample.group:
            del sample.group[partial]
        raise
    sample.dataset.file.flush()
    return InstanceLayer(sample.name, target, mask_layer, helper, result)


def run_on_file(path: str | os.PathLike, config: InstanceConfig | None = None, *,
                source: str = "prediction", overwrite: bool = False, progress=None,
                cancel=None) -> list[InstanceLayer]:
    """Open ``path`` read-write and :func:`add_instance_layers` to it."""
    from deepscem.dataset import Dataset

    if not Path(path).is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    with Dataset.open(path, "r+") as ds:
        return add_instance_layers(ds, config, source=source, overwrite=overwrite,
                                   progress=progress, cancel=cancel)

