"""Evaluation: voxel and object scores (``metrics``, pure NumPy) and the dataset-vs-dataset report
(``report``)."""

from deepscem.evaluation.report import EvaluationReport, evaluate

__all__ = ["EvaluationReport", "evaluate"]
