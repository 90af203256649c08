"""Datasets: the HDF5 file format and everything that reads, writes or changes it.

``store`` (the :class:`Dataset` / :class:`Sample` API), ``format`` (layout rules, chunking),
``layers`` (layer names), ``add`` (adding samples), ``ops`` (crop, export, distance transform),
``copying`` (save-as), ``imageio`` (TIFF/NPY volumes), ``synthetic`` (generated EM-like volumes).
"""

from deepscem.dataset.copying import save_as
from deepscem.dataset.layers import label_name, prediction_name
from deepscem.dataset.store import Dataset, Sample

__all__ = ["Dataset", "Sample", "label_name", "prediction_name", "save_as"]
