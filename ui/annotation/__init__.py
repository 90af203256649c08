"""Painting labels in the viewer: brush maths (``brush``), the stroke controller
(``painter``), the toolbar and menus (``toolbar``), "use prediction as label"
(``prediction_dialog``) and the shortcut help (``shortcuts``). The edits themselves are
written by the Qt-free :mod:`deepscem.dataset.editing`."""
