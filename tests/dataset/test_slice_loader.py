"""The viewer's background reader, without Qt: the newest request wins."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from deepscem.dataset import Dataset
from deepscem.dataset.slice_loader import NewestWinsLoader, read_planes
from deepscem.errors import DatasetError


class Collector:
    def __init__(self) -> None:
        self.got: list = []
        self.done = threading.Event()

    def __call__(self, key, result, error) -> None:
        self.got.append((key, result, error))
        self.done.set()


def test_requests_during_a_read_collapse_to_the_newest():
    gate = threading.Event()
    out = Collector()
    loader = NewestWinsLoader(out)
    ran = []

    def job(z):
        def read():
            if z == 0:
                gate.wait(5)
            ran.append(z)
            return z * 10
        return read

    loader.request(0, job(0))
    for z in range(1, 50):  # a slider dragged while slice 0 is read
        loader.request(z, job(z))
    assert loader.busy
    gate.set()
    deadline = time.monotonic() + 5
    while loader.busy and time.monotonic() < deadline:
        time.sleep(0.005)
    assert ran == [0, 49]
    assert [(k, r) for k, r, _ in out.got] == [(0, 0), (49, 490)]
    loader.shutdown()


def test_invalidate_drops_the_running_read_and_errors_are_delivered():
    gate = threading.Event()
    out = Collector()
    loader = NewestWinsLoader(out)
    loader.request("old", lambda: gate.wait(5))
    loader.request("waiting", lambda: 1)
    loader.invalidate()  # another sample is shown: neither result may arrive
    gate.set()
    loader.request("new", lambda: 1 / 0)
    assert out.done.wait(5)
    time.sleep(0.05)
    assert len(out.got) == 1 and out.got[0][0] == "new" and isinstance(out.got[0][2], ZeroDivisionError)
    loader.shutdown()
    loader.request("after", lambda: 1)  # ignored once shut down
    time.sleep(0.05)
    assert len(out.got) == 1


def test_read_planes_reads_layers_of_two_files(tmp_path):
    a, b = tmp_path / "a.hdf5", tmp_path / "b.hdf5"
    image = np.arange(2 * 8 * 9, dtype=np.uint8).reshape(2, 8, 9)
    with Dataset.create(a, "a", 1) as ds:
        ds.add_sample("s", image, [image > 50])
    with Dataset.create(b, "b", 1) as ds, Dataset.open(a) as src:
        ds.add_empty_sample("s", (2, 8, 9), image_from=src.sample("s")) \
            .create_layer("prediction_0000", np.float32)[...] = 0.25
    region = (slice(1, 2), slice(None), slice(None))
    planes = read_planes("s", [("image", a, "image"), ("label_0000", a, "label_0000"),
                               ("p@b", b, "prediction_0000"), ("gone", b, "prediction_0001")], region)
    assert sorted(planes) == ["image", "label_0000", "p@b"]
    np.testing.assert_array_equal(planes["image"], image[1:2])
    assert planes["p@b"].shape == (1, 8, 9) and planes["p@b"].max() == np.float32(0.25)
    with pytest.raises(DatasetError, match="no sample"):
        read_planes("other", [("image", a, "image")], region)
