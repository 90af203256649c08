"""``predict_dataset``: every sample of a DeepSCEM dataset into a new prediction dataset.

It writes a DeepSCEM prediction file (attrs ``name``, ``labels``; per sample the ``image`` and
``prediction_0000``... one per model output) into a temporary file next to the target and
renames it only when every sample is done, so a cancel or an error never leaves a
half-written file under the requested name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepscem import progress as prog
from deepscem.config import PredictConfig
from deepscem.dataset.format import require_space
from deepscem.dataset.normalization import image_reader
from deepscem.errors import DatasetError
from deepscem.inference.predictor import Predictor
from deepscem.models.introspection import ModelInfo
from deepscem.outputs import atomic_path, check_output


def predict_dataset(model: Any, info: ModelInfo | None, dataset_path: str | Path, out_path: str | Path,
                    config: PredictConfig | None = None, *, overwrite: bool = False,
                    instances: Any = None,
                    progress: prog.ProgressCallback | None = None,
                    cancel: prog.CancelToken | None = None) -> Path:
    """Predict every sample of ``dataset_path`` into a new prediction dataset ``out_path``.

    The output keeps the original's layout: attrs ``name`` and ``labels`` (= the model's
    outputs), per sample the ``image`` and ``prediction_0000``... (float32, or uint8 {0, 1}
    with a threshold). An existing ``out_path`` is refused unless ``overwrite``; it is replaced
    only once the new file is complete. Progress counts tiles over all samples.
    A model with boundary outputs (``ModelInfo.targets`` "label+boundary") writes its second
    half as float ``prediction_XXXX_boundary`` layers. ``instances``: an
    :class:`~deepscem.postprocessing.instances.InstanceConfig` to also write
    ``instance_XXXX`` object ids (before the file is renamed into place).

    Long because the per-sample loop and the post-processing share one temporary output file
    that is renamed into place only when every step succeeded.
    """
    from deepscem.dataset import Dataset
    from deepscem.dataset.layers import is_prediction, kind_of, output_layers

    config = config or PredictConfig()
    src_path, out_path = Path(dataset_path), Path(out_path)
    check_output(out_path, inputs={"the dataset to predict": src_path}, overwrite=overwrite,
                 what="prediction dataset", error=DatasetError)
    # a Predictor already set up (e.g. for an imported bioimage.io model) is used as it is
    predictor = model if isinstance(model, Predictor) else Predictor(model, info, config)
    dtype = np.float32 if config.threshold is None else np.uint8
    out_layers = output_layers(predictor.outputs, getattr(info, "targets", "label"))
    # boundary maps stay float (the watershed needs their values), masks follow the threshold
    dtypes = [np.float32 if kind_of(n) == "boundary" else dtype for n in out_layers]
    n_labels = sum(1 for n in out_layers if is_prediction(n))
    with atomic_path(out_path) as tmp:
        with Dataset.open(src_path) as src:
            names = src.sample_names()
            total = sum(predictor.count_tiles(src.sample(n).shape) for n in names)
            # Images are copied; predictions stored uncompressed (floats) or compressed (masks).
            per_voxel = predictor.outputs * np.dtype(dtype).itemsize
            need = sum(int(np.prod(src.sample(n).shape)) * (per_voxel + src.sample(n).layer(
                "image").dtype.itemsize) for n in names)
            require_space(out_path, need, f"the prediction {out_path.name}")
            prog.emit(progress, 0, total, "tiles", "predict")
            with Dataset.create(tmp, f"{src.name} prediction", n_labels,
                                overwrite=True) as out:
                aliases = list(info.label_names if info is not None else [])[:n_labels]
                if len(aliases) == n_labels:
                    out.set_label_aliases(aliases)
                done = 0
                for name in names:
                    prog.check(cancel)
                    sample = src.sample(name)
                    target = out.add_empty_sample(name, tuple(sample.shape), image_from=sample)
                    layers = [target.create_layer(n, d) for n, d in zip(out_layers, dtypes)]
                    if config.z_smooth > 0:
                        for layer in layers:
                            layer.attrs["z_smooth"] = float(config.z_smooth)
                    read = image_reader(sample, predictor.normalization)  # as in training
                    done = predictor.predict_volume(read, sample.shape, layers,
                                                    progress=progress, cancel=cancel,
                                                    done=done, total=total)
                if config.min_size > 1:
                    _remove_small_objects(out, config.min_size, progress, cancel)
                if instances is not None:  # predict --instances
                    from deepscem.postprocessing.instance_layers import add_instance_layers

                    add_instance_layers(out, instances, progress=progress, cancel=cancel)
    return out_path


def _remove_small_objects(out: Any, min_size: int, progress: prog.ProgressCallback | None,
                          cancel: prog.CancelToken | None) -> None:
    """Clean every prediction layer of ``out`` (one progress bar over all of them); each
    layer records ``min_size`` and what was removed in its attrs."""
    from deepscem.postprocessing.small_objects import remove_small_objects

    samples = [out.sample(name) for name in out.sample_names()]
    layers = [sample.layer(name) for sample in samples for name in sample.prediction_layers()]
    total = sum(int(layer.shape[0]) for layer in layers)
    done = 0
    for layer in layers:
        def report(p: prog.Progress, offset: int = done) -> None:
            prog.emit(progress, offset + p.done, total, "slices", "remove small objects")

        removed = remove_small_objects(layer, min_size, progress=report, cancel=cancel)
        layer.attrs["min_size"] = min_size
        layer.attrs["removed_objects"] = removed.objects
        layer.attrs["removed_voxels"] = removed.voxels
        layer.attrs["removal_exact"] = removed.exact
        done += int(layer.shape[0])
