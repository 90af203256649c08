""""Use prediction as label": copy a thresholded ``prediction_XXXX`` layer into a label of the
shown sample (this slice, a region or the whole sample), marked annotated; then paint the
corrections. The copy runs in a worker (a whole sample is written slab by slab) and is
undoable up to :data:`deepscem.dataset.editing.UNDO_MAX_VOXELS`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PyQt5.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QRadioButton,
    QSpinBox,
    QWidget,
)

from deepscem.dataset.editing import copy_prediction
from deepscem.dataset.layers import is_prediction, label_name
from deepscem.errors import DatasetError

from ..dataset_tree import make_ref, split_ref


@dataclass(frozen=True)
class UsePrediction:
    source: Path           # file holding the prediction
    prediction: str        # prediction_XXXX
    label: str             # label_XXXX of the shown sample
    box: tuple[slice, slice, slice] | None   # None: the whole sample
    threshold: float


def prediction_refs(tree, path: Path, sample: str) -> list[str]:
    """Prediction layers that fit the sample: its own and those of the same-named sample of
    the same shape in other loaded files (``layer@path`` refs)."""
    summary = tree.summaries[path]
    shape, layers = summary.samples[sample]
    refs = [n for n in layers if is_prediction(n)]
    for other in tree.summaries.values():
        if other.path != path and other.samples.get(sample, ((),))[0] == shape:
            refs += [make_ref(n, other.path) for n in other.samples[sample][1] if is_prediction(n)]
    return refs


class UsePredictionDialog(QDialog):
    def __init__(self, refs: list[str], aliases: list[str], view, label: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Use prediction as label")
        src = view.source
        self.path, self.shape = src.path, src.shape
        self.prediction = QComboBox()
        self.prediction.addItems(refs)
        shown = [r for r in src.layers if r in refs]
        if shown:
            self.prediction.setCurrentText(shown[0])
        self.label = QComboBox()
        self.label.addItems([f"{i}: {n}" for i, n in enumerate(aliases)])
        self.label.setCurrentIndex(min(label, len(aliases) - 1))
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.01, 1.0)
        self.threshold.setSingleStep(0.05)
        style = view.styles[self.prediction.currentText()] if refs else None
        self.threshold.setValue(style.threshold if style and style.threshold else 0.5)
        self.threshold.setToolTip("Voxels with prediction >= threshold become label, the rest background")
        self.scope = QButtonGroup(self)
        row = QHBoxLayout()
        for i, text in enumerate(("This slice", "Region", "Whole sample")):
            button = QRadioButton(text)
            self.scope.addButton(button, i)
            row.addWidget(button)
        self.scope.button(0).setChecked(True)
        (z0, z1), (y0, y1), (x0, x1) = (view.z, view.z), _visible(view.canvas, src.shape[1:])
        self.region = [_spin(v, n) for v, n in zip((z0, z1, y0, y1, x0, x1),
                                                      (src.shape[0],) * 2 + (src.shape[1],) * 2
                                                      + (src.shape[2],) * 2)]
        box = QHBoxLayout()
        for spin in self.region:
            box.addWidget(spin)
        form = QFormLayout(self)
        form.addRow("Prediction", self.prediction)
        form.addRow("Into label", self.label)
        form.addRow("Threshold", self.threshold)
        form.addRow("Where", row)
        form.addRow("Region Z0 Z1 Y0 Y1 X0 X1", box)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.z = view.z

    def request(self) -> UsePrediction:
        layer, other = split_ref(self.prediction.currentText())
        scope = self.scope.checkedId()
        if scope == 0:
            box = (slice(self.z, self.z + 1), slice(None), slice(None))
        elif scope == 1:
            z0, z1, y0, y1, x0, x1 = (s.value() for s in self.region)
            box = (slice(z0, z1 + 1), slice(y0, y1 + 1), slice(x0, x1 + 1))
        else:
            box = None
        return UsePrediction(other or self.path, layer, label_name(self.label.currentIndex()), box,
                             self.threshold.value())


def _spin(value: int, size: int) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(0, size - 1)
    spin.setValue(int(min(max(value, 0), size - 1)))
    spin.setToolTip("Bounds included, 0-based")
    return spin


def _visible(canvas, shape_yx) -> tuple[tuple[int, int], tuple[int, int]]:
    """(y0, y1), (x0, x1) of the part of the slice the main view shows."""
    rect = canvas.mapToScene(canvas.viewport().rect()).boundingRect()
    ys = (max(int(rect.top()), 0), min(int(rect.bottom()), shape_yx[0] - 1))
    xs = (max(int(rect.left()), 0), min(int(rect.right()), shape_yx[1] - 1))
    return ys, xs


def use_prediction(window, req: UsePrediction):
    """Run the copy in a worker; the edit is recorded for undo and shown when done."""
    src = window.view.source

    def done(patch) -> None:
        where = "the whole sample" if req.box is None else "the region"
        window.painter.record(patch, f"{req.prediction} >= {req.threshold:g} copied into {req.label} "
                                     f"in {where}" + ("" if patch or req.box else " (too large to undo)"))
        window.dataset_actions.refresh(src.path)
    return window.tasks.run(copy_prediction, req.source, req.prediction, src.path, src.sample, req.label,
                            req.box, req.threshold, title=f"Copying {req.prediction} into {req.label}",
                            on_result=done)


def use_prediction_clicked(window) -> None:
    src = window.view.source
    if src is None:
        raise DatasetError("select a sample to show first")
    refs = prediction_refs(window.tree, src.path, src.sample)
    if not refs:
        raise DatasetError(f"sample {src.sample!r} has no prediction: predict it first (Model > Predict), "
                           "then load the prediction file")
    aliases = window.tree.summaries[src.path].aliases
    dialog = UsePredictionDialog(refs, aliases, window.view, window.painter.label, window)
    if dialog.exec_() == QDialog.Accepted:
        use_prediction(window, dialog.request())
