import numpy as np
import pytest
import tifffile

from deepscem.dataset import imageio
from deepscem.errors import InputFileError

DTYPES = [np.uint8, np.uint16, np.uint32, np.int8, np.int16, np.int32, np.float32, np.float64]


def _volume(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(100, 30, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), min(info.max, 70000), shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 17, 23), (17, 23)])
@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_round_trip_every_dtype_2d_and_3d(tmp_path, dtype, shape, suffix):
    data = _volume(shape, dtype)
    path = tmp_path / f"img{suffix}"
    imageio.write_image(path, data)
    back = imageio.read_image(path)
    assert back.dtype == np.dtype(dtype)
    assert back.shape == (shape if len(shape) == 3 else (1,) + shape)
    np.testing.assert_array_equal(back.reshape(shape), data)


@pytest.mark.parametrize("kwargs", [
    {"compression": "zlib"}, {"compression": "lzw"}, {"bigtiff": True}, {"imagej": True},
    {"ome": True}, {"tile": (16, 16)}, {"compression": "zlib", "predictor": True},
])
def test_tiff_flavours_read_the_same_voxels(tmp_path, kwargs):
    data = _volume((5, 40, 48), np.uint16)
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, data, photometric="minisblack", **kwargs)
    with imageio.open_volume(path) as src:
        assert src.shape == (5, 40, 48)
        np.testing.assert_array_equal(src.read(1, 4), data[1:4])
        parts = [slab for _, slab in src.slabs(2)]
    np.testing.assert_array_equal(np.concatenate(parts), data)


def test_big_endian_tiff_and_npy(tmp_path):
    data = _volume((2, 9, 11), np.uint16)
    tifffile.imwrite(tmp_path / "be.tif", data, byteorder=">")
    np.save(tmp_path / "be.npy", data.astype(">u2"))
    for name in ("be.tif", "be.npy"):
        back = imageio.read_image(tmp_path / name)
        assert back.dtype.isnative
        np.testing.assert_array_equal(back, data)


def test_fortran_npy(tmp_path):
    data = np.asfortranarray(_volume((3, 8, 9), np.uint8))
    np.save(tmp_path / "f.npy", data)
    np.testing.assert_array_equal(imageio.read_image(tmp_path / "f.npy"), data)


def test_rgb_and_multichannel_are_refused_with_how_to_convert(tmp_path):
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((10, 12, 3), np.uint8), photometric="rgb")
    with pytest.raises(InputFileError, match=r"rgb\.tif.*RGB.*8-bit"):
        imageio.read_image(tmp_path / "rgb.tif")
    tifffile.imwrite(tmp_path / "czyx.tif", np.zeros((3, 2, 10, 12), np.uint8), imagej=True,
                     metadata={"axes": "ZCYX"})
    with pytest.raises(InputFileError, match=r"czyx\.tif.*multi-dimensional.*Split Channels"):
        imageio.read_image(tmp_path / "czyx.tif")
    np.save(tmp_path / "rgb.npy", np.zeros((2, 10, 12, 3), np.uint8))
    with pytest.raises(InputFileError, match="RGB"):
        imageio.read_image(tmp_path / "rgb.npy")


@pytest.mark.parametrize("content,suffix,match", [
    (None, ".tif", "no such file"),
    (b"not a tiff at all", ".tif", "not a readable TIFF"),
    (b"garbage", ".npy", "not a readable .npy"),
    (b"x", ".png", "unsupported image format"),
])
def test_bad_files_have_clear_errors(tmp_path, content, suffix, match):
    path = tmp_path / f"bad{suffix}"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputFileError, match=match):
        imageio.read_image(path)


def test_unsupported_dtype(tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((4, 4), np.complex64))
    with pytest.raises(InputFileError, match="pixel type complex64"):
        imageio.read_image(tmp_path / "c.npy")


@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_truncated_raw_file_is_found_when_opened(tmp_path, suffix):
    data = _volume((4, 32, 32), np.uint8)
    path = tmp_path / f"t{suffix}"
    imageio.write_image(path, data)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 2000] if suffix == ".npy" else raw[:3000])
    with pytest.raises(InputFileError, match="truncated|damaged|not a readable"):
        imageio.open_volume(path)


@pytest.mark.parametrize("values", [(0, 1), (0, 255), (0,), (7,), (0, 65535)])
def test_labels_become_binary_uint8(tmp_path, values):
    rng = np.random.default_rng(1)
    data = np.asarray(values, np.uint16)[rng.integers(0, len(values), (3, 10, 10))]
    imageio.write_image(tmp_path / "l.tif", data)
    label = imageio.read_label(tmp_path / "l.tif")
    assert label.dtype == np.uint8
    np.testing.assert_array_equal(label, (data != 0).astype(np.uint8))


@pytest.mark.parametrize("values,shown", [((0, 1, 2), "0, 1, 2"), ((1, 2), "1, 2"),
                                         ((0.0, 0.5, 1.0), "0, 0.5, 1")])
def test_non_binary_label_names_file_and_values(tmp_path, values, shown):
    data = np.asarray(values)[np.arange(30).reshape(1, 5, 6) % len(values)]
    imageio.write_image(tmp_path / "lab.npy", data.astype(np.float32 if shown.count(".") else np.uint8))
    with pytest.raises(InputFileError, match=rf"lab\.npy.*found {shown}"):
        imageio.read_label(tmp_path / "lab.npy")


def test_image_array_validates_in_memory_arrays(tmp_path):
    assert imageio.image_array(np.zeros((4, 5))).shape == (1, 4, 5)
    assert imageio.image_array(np.zeros((3, 4, 5, 1))).shape == (3, 4, 5)
    np.save(tmp_path / "c1.npy", np.zeros((1, 4, 5, 1), np.uint8))
    assert imageio.read_image(tmp_path / "c1.npy").shape == (1, 4, 5)
    with pytest.raises(InputFileError, match="multi-dimensional"):
        imageio.image_array(np.zeros((2, 3, 4, 5)))
