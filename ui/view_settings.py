"""What the viewer remembers between sessions (QSettings): last folders, ticked layers and
contrast per sample, overlay styles, whether the wheel scrolls Z.

``DEEPSCEM_SETTINGS_DIR`` moves the settings file (the tests point it at a temporary folder
so they never touch the user's settings).
"""

from __future__ import annotations

import os
from pathlib import Path

from PyQt5.QtCore import QSettings


def settings() -> QSettings:
    folder = os.environ.get("DEEPSCEM_SETTINGS_DIR")
    if folder:
        return QSettings(str(Path(folder) / "deepscem.ini"), QSettings.IniFormat)
    return QSettings(QSettings.IniFormat, QSettings.UserScope, "DeepSCEM", "deepscem")


def _sample_key(path: str | Path, sample: str) -> str:
    return f"{Path(path).resolve()}|{sample}".replace("/", "\\")  # '/' would nest groups


def last_folder(kind: str) -> str:
    """The folder of the last file chosen for ``kind`` ("dataset", "model"...), or ""."""
    value = settings().value(f"folders/{kind}", "")
    return str(value) if value and Path(str(value)).is_dir() else ""


def remember_folder(kind: str, chosen: str | Path) -> None:
    if chosen:
        path = Path(chosen)
        settings().setValue(f"folders/{kind}", str(path if path.is_dir() else path.parent))


def wheel_scrolls_z() -> bool:
    return str(settings().value("view/wheel_scrolls_z", "false")).lower() == "true"


def set_wheel_scrolls_z(on: bool) -> None:
    settings().setValue("view/wheel_scrolls_z", bool(on))


def saved_contrast(path: str | Path, sample: str) -> tuple[float, float] | None:
    value = settings().value(f"contrast/{_sample_key(path, sample)}")
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return lo, hi


def save_contrast(path: str | Path, sample: str, lo: float, hi: float) -> None:
    settings().setValue(f"contrast/{_sample_key(path, sample)}", [float(lo), float(hi)])


def saved_layers(path: str | Path, sample: str) -> list[str] | None:
    value = settings().value(f"layers/{_sample_key(path, sample)}")
    if value is None:
        return None
    return [str(v) for v in ([value] if isinstance(value, str) else value) if v]


def save_layers(path: str | Path, sample: str, layers: list[str]) -> None:
    settings().setValue(f"layers/{_sample_key(path, sample)}", list(layers) or [""])


def load_styles(styles) -> None:
    """Fill a :class:`ui.layer_style.LayerStyles` with the saved colours and opacities."""
    store = settings()
    store.beginGroup("styles")
    for layer in store.childGroups():
        style = styles[layer]
        try:
            style.colour = tuple(int(v) for v in store.value(f"{layer}/colour", style.colour))[:3]
            style.opacity = float(store.value(f"{layer}/opacity", style.opacity))
        except (TypeError, ValueError):
            continue
    store.endGroup()


def save_style(layer: str, style) -> None:
    store = settings()
    store.setValue(f"styles/{layer}/colour", list(style.colour))
    store.setValue(f"styles/{layer}/opacity", float(style.opacity))
