"""Every input form of open_volume returns the right voxels, shape, dtype and voxel size.

The OME-Zarr inputs (NGFF 0.4 and 0.5) are written with ome-zarr-py, not with the zarr code
that reads them; TIFF slices with tifffile, PNG with Pillow, HDF5 with h5py, MRC with mrcfile.
"""

import h5py
import numpy as np
import pytest
import tifffile

from deepscem.dataset import Dataset
from deepscem.dataset.volumes import absolute_spec, open_volume, spec_name, volume_range
from deepscem.errors import InputFileError

REGION = (slice(1, 4), slice(3, 20), slice(5, 29))


@pytest.fixture(scope="module")
def volume():
    rng = np.random.default_rng(3)
    return rng.integers(0, 60000, (5, 40, 32)).astype(np.uint16)


def write_ngff(path, data, version, scale=(30.0, 4.0, 4.0)):
    """An OME-Zarr image written by ome-zarr-py (units in nanometres, 3 levels)."""
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image

    fmt = FormatV04() if version == "0.4" else FormatV05()
    root = zarr.open_group(str(path), mode="w", zarr_format=fmt.zarr_format)
    write_image(data, root, axes="zyx", fmt=fmt, scale_factors=[{"y": 2, "x": 2},
                                                                 {"y": 4, "x": 4}],
                scale=dict(zip("zyx", scale)), axes_units=dict.fromkeys("zyx", "nanometer"),
                storage_options={"chunks": (2, 16, 16)})
    return path


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_written_by_ome_zarr_py(tmp_path, volume, version):
    path = write_ngff(tmp_path / f"cells{version}.ome.zarr", volume, version)
    marker = "zarr.json" if version == "0.5" else ".zattrs"
    assert (path / marker).is_file()
    with open_volume(path) as src:
        assert src.shape == volume.shape and src.dtype == np.uint16
        assert src.voxel_size == pytest.approx((30.0, 4.0, 4.0))
        np.testing.assert_array_equal(src.read_region(REGION), volume[REGION])
        np.testing.assert_array_equal(src.read(2, 5), volume[2:5])
    level = sorted(p.name for p in path.iterdir() if (p / "zarr.json").exists()
                   or (p / ".zarray").exists())[1]
    with open_volume(path / level) as src:  # a smaller scale level, with its own voxel size
        assert src.shape == (5, 20, 16)
        assert src.voxel_size == pytest.approx((30.0, 8.0, 8.0))


def test_tiff_slices_in_natural_order(tmp_path, volume):
    folder = tmp_path / "slices"
    folder.mkdir()
    for z in range(len(volume)):
        tifffile.imwrite(folder / f"img_{z * 5}.tif", volume[z])  # img_0 img_5 img_10 img_15...
    (folder / "notes.txt").write_text("not a slice")
    with open_volume(folder) as src:
        assert src.shape == volume.shape
        np.testing.assert_array_equal(src.read_region(REGION), volume[REGION])
        np.testing.assert_array_equal(src.read(0, 5), volume)


def test_png_slices_and_a_wrong_slice_is_named(tmp_path, volume):
    from PIL import Image

    folder = tmp_path / "png"
    folder.mkdir()
    small = (volume // 256).astype(np.uint8)
    for z in range(len(small)):
        Image.fromarray(small[z]).save(folder / f"s{z + 1}.png")
    with open_volume(folder) as src:
        assert src.dtype == np.uint8
        np.testing.assert_array_equal(src.read_region(REGION), small[REGION])
    Image.fromarray(small[0][:10]).save(folder / "s9.png")
    with open_volume(folder) as src, pytest.raises(InputFileError, match="s9.png"):
        src.read(0, 6)


def test_hdf5_path_and_deepscem_sample(tmp_path, volume):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("raw/em", data=volume, chunks=(1, 16, 16))
        f["raw/em"].attrs["element_size_um"] = [0.03, 0.004, 0.004]
    with open_volume(f"{path}:/raw/em") as src:
        np.testing.assert_array_equal(src.read_region(REGION), volume[REGION])
        assert src.voxel_size == pytest.approx((30.0, 4.0, 4.0))
    with pytest.raises(InputFileError, match="raw/em"):
        open_volume(f"{path}:/nope")
    with pytest.raises(InputFileError, match="which dataset"):
        open_volume(path)
    data = tmp_path / "data.hdf5"
    with Dataset.create(data, "d", 1) as ds:
        ds.add_sample("s1", volume, [None])
    with open_volume(f"{data}:s1") as src:
        np.testing.assert_array_equal(src.read_region(REGION), volume[REGION])
        assert src.value_range == (float(volume.min()), float(volume.max()))
    assert spec_name(f"{path}:/raw/em") == "em" and spec_name(tmp_path / "a.ome.zarr") == "a"
    assert absolute_spec("x.h5:/a").endswith("x.h5:/a") and absolute_spec("x.h5:/a")[0] == "/"


def test_mrc(tmp_path, volume):
    import mrcfile

    path = tmp_path / "tomo.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(volume.astype(np.int16) // 2)
        mrc.voxel_size = (40.0, 40.0, 300.0)  # x, y, z in Angstrom
    with open_volume(path) as src:
        np.testing.assert_array_equal(src.read_region(REGION), (volume.astype(np.int16) // 2)[REGION])
        assert src.voxel_size == pytest.approx((30.0, 4.0, 4.0))


def test_tiff_stack_region_and_range(tmp_path, volume):
    tifffile.imwrite(tmp_path / "stack.tif", volume)
    with open_volume(tmp_path / "stack.tif") as src:
        np.testing.assert_array_equal(src.read_region(REGION), volume[REGION])
        assert volume_range(src) == (float(volume.min()), float(volume.max()))


def test_bad_inputs_say_what_to_do(tmp_path):
    with pytest.raises(InputFileError, match="no such file or folder"):
        open_volume(tmp_path / "missing.tif")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="slices"):
        open_volume(tmp_path / "empty")
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(rgb / "a.png")
    with pytest.raises(InputFileError, match="colour"):
        open_volume(rgb)


def test_add_sample_takes_any_form(tmp_path, volume):
    """dataset add-sample reads an OME-Zarr image and an HDF5 path; the voxel size comes along."""
    from deepscem import cli

    image = write_ngff(tmp_path / "img.ome.zarr", volume, "0.4")
    mask = (volume > 30000).astype(np.uint8)
    with h5py.File(tmp_path / "labels.h5", "w") as f:
        f["mito"] = mask
    data = tmp_path / "d.hdf5"
    assert cli.main(["dataset", "create", str(data), "d", "1"]) == 0
    assert cli.main(["dataset", "add-sample", str(data), "s", str(image),
                     f"{tmp_path / 'labels.h5'}:/mito"]) == 0
    with Dataset.open(data) as ds:
        sample = ds.sample("s")
        np.testing.assert_array_equal(sample.read_layer("image"), volume)
        np.testing.assert_array_equal(sample.read_layer("label_0000"), mask)
        assert tuple(sample.group.attrs["voxel_size"]) == pytest.approx((30.0, 4.0, 4.0))
