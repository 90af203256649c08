"""What the Train dialog warns about in the datasets ticked for training and validation."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from deepscem.config import HOLDOUT

from ..dataset_tree import DatasetSummary


def training_warnings(train: Sequence[Path], valid: Sequence[Path],
                      datasets: Mapping[Path, DatasetSummary]) -> tuple[list[str], list[str]]:
    """(same-dataset warnings, test-volume warnings). ``valid``: the validation datasets (empty
    without validation). The very same datasets for both: the trainer holds the last HOLDOUT of
    every sample's slices back (TrainDialog.accept); an overlap only: validation is optimistic."""
    same: list[str] = []
    if set(train) & set(valid):
        names = ", ".join(p.name for p in train if p in valid)
        both = f"{names} is both a training and the validation dataset"
        why = (f"the last {HOLDOUT:.0%} of every sample's slices are held back for validation and never "
               "trained on" if set(train) == set(valid) else
               "the validation loss then scores patches the model trains on (optimistic), and 'keep "
               "best' / early stopping choose by it")
        same = [f"{both}: {why}; tick a separate validation dataset if you have one"]
    tests = [f"{path.name} holds {', '.join(repr(n) for n in names)}, which looks like a test "
             "volume: a volume trained on scores too well when evaluated"
             for path in train for names in [named_as_test(datasets[path])] if names]
    return same, tests


def named_as_test(summary: DatasetSummary) -> list[str]:
    """Sample names of ``summary`` that say they are test data ("test", "I3_test", "Test 2")."""
    return [name for name in summary.samples if re.search(r"(^|[^a-z])test", name, re.IGNORECASE)]
