"""Measurements: physical volume and surface of an ellipsoid, border objects, the CLI."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from instance_shapes import ellipsoid

from deepscem.cli import main
from deepscem.dataset import Dataset
from deepscem.evaluation.measurements import measure_ids


def ellipsoid_area(a: float, b: float, c: float) -> float:
    """Knud Thomsen's formula (error < 1.1 %; exact for spheres)."""
    p = 1.6075
    return 4 * math.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p)


@pytest.mark.parametrize("spacing,axes", [((20.0, 5.0, 5.0), (400.0, 300.0, 200.0)),
                                          ((10.0, 4.0, 4.0), (150.0, 240.0, 120.0))])
def test_ellipsoid_volume_and_surface_within_3_percent(spacing, axes):
    ids = ellipsoid(spacing, axes).astype(np.uint32)
    (row,) = measure_ids(ids, voxel_size=spacing)
    a, b, c = axes
    assert row["unit"] == "nm"
    assert row["volume"] == pytest.approx(4 / 3 * math.pi * a * b * c, rel=0.03)
    assert row["surface_area"] == pytest.approx(ellipsoid_area(a, b, c), rel=0.03)
    assert row["major_axis"] == pytest.approx(2 * max(axes), rel=0.03)
    assert row["minor_axis"] == pytest.approx(2 * min(axes), rel=0.03)
    assert row["elongation"] == pytest.approx(max(axes) / min(axes), rel=0.05)
    assert 0.8 < row["sphericity"] < 1.0
    assert not row["touches_border"]
    centre = [(n - 1) / 2 for n in ids.shape]
    assert [row[f"centroid_{a}"] for a in "zyx"] == pytest.approx(centre, abs=0.01)


def test_rows_in_voxels_border_and_intensity():
    ids = np.zeros((6, 10, 10), np.uint32)
    ids[0:2, 0:3, 0:3] = 5            # touches the border
    ids[2:5, 4:8, 4:8] = 9
    image = np.arange(600, dtype=np.uint16).reshape(ids.shape)
    rows = measure_ids(ids, image=image)
    assert [r["id"] for r in rows] == [5, 9]
    first, second = rows
    assert first["unit"] == "voxel" and first["voxels"] == first["volume"] == 18
    assert first["touches_border"] and not second["touches_border"]
    assert second["slices"] == 3
    assert (second["bbox_z0"], second["bbox_y1"]) == (2, 8)
    assert second["mean_intensity"] == pytest.approx(image[ids == 9].mean())


def test_measure_command_csv_json_and_summary(tmp_path, capsys):
    path = tmp_path / "d.hdf5"
    mask = np.zeros((8, 40, 40), np.uint8)
    mask[1:5, 2:10, 2:10] = 1
    mask[2:7, 20:30, 20:30] = 1
    with Dataset.create(path, "d", 1) as ds:
        ds.add_sample("s", np.ones(mask.shape, np.uint8), [mask], voxel_size=(50, 5, 5))
    assert main(["measure", str(path), "--csv", str(tmp_path / "m.csv"),
                 "--json", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "s label 0 (label_0000): 2 objects (0 touch the border)" in out
    rows = list(csv.DictReader((tmp_path / "m.csv").open()))
    assert [float(r["volume"]) for r in rows] == [256 * 1250.0, 500 * 1250.0]
    summary = json.loads((tmp_path / "m.json").read_text())["summaries"][0]
    assert summary["count"] == 2
    assert summary["density_per_um3"] == pytest.approx(2 / (8 * 40 * 40 * 1250 / 1e9))
    assert summary["volume_fraction"] == pytest.approx(756 / mask.size)
    assert main(["measure", str(tmp_path / "missing.hdf5")]) == 1
