import json
import shlex

import h5py
import numpy as np
import pytest
import tifffile
from h5_content import file_hash, logical_hash
from synthetic_data import synthetic_volume

from deepscem import cli
from deepscem.dataset import Dataset, imageio

# The original DeepSCEM README's dataset examples, verbatim.
SEED_EXAMPLES = [
    "--create-dataset I3_EXAMPLE.hdf5 I3 2",
    "--add-sample I3_EXAMPLE.hdf5 i31 i3_1.tif i3_label_11.tif i3_label_12.tif ",
]
SEED_COMBINED = (
    "--create-dataset I3_EXAMPLE.hdf5 I3 2 --add-sample I3_EXAMPLE.hdf5 i31 i3_1.tif i3_label_11.tif "
    "i3_label_12.tif --add-sample I3_EXAMPLE.hdf5 i32 i3_2.tif i3_label_21.tif i3_label_22.tif"
)


@pytest.fixture
def i3_files(tmp_path, monkeypatch):
    """i3_1.tif, i3_label_11.tif ... in the working directory, as the original DeepSCEM's examples expect."""
    monkeypatch.chdir(tmp_path)
    for i, shape in ((1, (4, 32, 40)), (2, (3, 24, 24))):
        image, mask = synthetic_volume(shape, np.uint8, seed=i)
        tifffile.imwrite(f"i3_{i}.tif", image)
        tifffile.imwrite(f"i3_label_{i}1.tif", mask * 255, compression="zlib")
        tifffile.imwrite(f"i3_label_{i}2.tif", 1 - mask)
    return tmp_path


def run(argv, capsys):
    code = cli.main(shlex.split(argv) if isinstance(argv, str) else argv)
    out, err = capsys.readouterr()
    return code, out, err


def _check_layout(path, samples):
    with h5py.File(path) as f:
        assert f.attrs["name"] == "I3" and int(f.attrs["labels"]) == 2
        assert sorted(f.keys()) == samples
        for name in samples:
            assert sorted(f[name].keys()) == ["image", "label_0000", "label_0001"]
            i = name[-1]
            np.testing.assert_array_equal(f[name]["image"][()], tifffile.imread(f"i3_{i}.tif"))
            np.testing.assert_array_equal(f[name]["label_0000"][()],
                                          imageio.read_label(f"i3_label_{i}1.tif"))
            assert tuple(f[name].attrs["shape"]) == f[name]["image"].shape


def test_seed_examples_verbatim(i3_files, capsys):
    for example in SEED_EXAMPLES:
        code, _, err = run(example, capsys)
        assert code == 0, err
    _check_layout("I3_EXAMPLE.hdf5", ["i31"])


def test_seed_combined_example_and_original_layout(i3_files, capsys, shared_data):
    code, _, err = run(SEED_COMBINED, capsys)
    assert code == 0, err
    _check_layout("I3_EXAMPLE.hdf5", ["i31", "i32"])
    assert run("dataset save-as I3_EXAMPLE.hdf5 I3_ORIG.hdf5 --original", capsys)[0] == 0
    reference = shared_data / "original-format" / "orig_dataset.hdf5"

    def structure(path):
        with h5py.File(path) as f:
            return ({k: np.asarray(v).dtype.kind for k, v in f.attrs.items()},
                    {n: (sorted(g.attrs), {d: (g[d].dtype.str, g[d].chunks, g[d].compression)
                                           for d in ("image", "label_0000")}) for n, g in f.items()})

    ref_attrs, ref_samples = structure(reference)
    attrs, samples = structure("I3_ORIG.hdf5")
    assert attrs == ref_attrs
    assert all(v == ref_samples["s3d"] for v in samples.values())


def test_seed_examples_with_npy_and_blank_label(i3_files, capsys):
    np.save("img.npy", tifffile.imread("i3_1.tif"))
    np.save("lbl.npy", tifffile.imread("i3_label_11.tif"))
    code, _, err = run('--create-dataset N.hdf5 I3 2 --add-sample N.hdf5 s img.npy lbl.npy ""', capsys)
    assert code == 0, err
    with Dataset.open("N.hdf5") as ds:
        s = ds.sample("s")
        np.testing.assert_array_equal(s.read_layer("label_0000"), imageio.read_label("i3_label_11.tif"))
        assert s.read_layer("label_0001").max() == 0


def test_subcommands_end_to_end(i3_files, capsys):
    assert run("dataset create D.hdf5 I3 2", capsys)[0] == 0
    assert run("dataset add-sample D.hdf5 a i3_1.tif i3_label_11.tif -", capsys)[0] == 0
    assert run("dataset add-sample D.hdf5 b i3_2.tif i3_label_21.tif i3_label_22.tif", capsys)[0] == 0
    assert run("dataset aliases D.hdf5 mito er", capsys)[1] == "0: mito\n1: er\n"
    code, out, _ = run("dataset info D.hdf5 --json", capsys)
    info = json.loads(out)
    assert code == 0 and info["label_aliases"] == ["mito", "er"]
    assert [s["name"] for s in info["samples"]] == ["a", "b"] and info["samples"][0]["shape"] == [4, 32, 40]
    code, out, _ = run("dataset info D.hdf5", capsys)
    assert "a: 4 x 32 x 40 (Z, Y, X)" in out and "2 sample(s)" in out
    assert run("dataset crop D.hdf5 a --z 1 3 --x 5 25 --new-name a2", capsys)[0] == 0
    assert run("dataset rename D.hdf5 a2 a3", capsys)[0] == 0
    assert run("dataset rename-sample D.hdf5 a3 a4", capsys)[0] == 0
    assert run("dataset distance-transform D.hdf5 all 0 --sampling 2 1 1", capsys)[0] == 0
    code, out, _ = run("dataset export D.hdf5 a4 out --layers image label_0000_dt", capsys)
    assert code == 0 and out.split() == ["out/a4_image.tif", "out/a4_label_0000_dt.tif"]
    np.testing.assert_array_equal(tifffile.imread("out/a4_image.tif"),
                                  tifffile.imread("i3_1.tif")[1:3, :, 5:25])
    assert run("dataset remove-sample D.hdf5 b", capsys)[0] == 0
    assert run("dataset save-as D.hdf5 E.hdf5", capsys)[0] == 0
    with Dataset.open("E.hdf5") as ds:
        assert ds.sample_names() == ["a", "a4"]
        assert ds.sample("a4").layer_names() == ["image", "label_0000", "label_0001", "label_0000_dt"]


@pytest.mark.parametrize("argv,message", [
    ("dataset add-sample D.hdf5 c i3_1.tif i3_1.tif -", "i3_1.tif: a label must hold 0 and at most one"),
    ("dataset add-sample D.hdf5 c i3_1.tif i3_label_21.tif -", "label shape"),
    ("dataset add-sample D.hdf5 c i3_1.tif -", "needs 2 label"),
    ("dataset add-sample D.hdf5 a i3_1.tif - -", "already exists"),
    ("dataset add-sample D.hdf5 c nope.tif - -", "nope.tif: no such file"),
    ("dataset create D.hdf5 X 2", "already exists"),
    ("dataset crop D.hdf5 a --z 0 9", "z range 0..9"),
    ("dataset rename D.hdf5 zz yy", "no sample 'zz'"),
    ("dataset remove-sample D.hdf5 a zz", "no sample 'zz'"),
    ("dataset aliases D.hdf5 only-one", "exactly 2"),
    ("dataset distance-transform D.hdf5 a 5", "label index"),
    ("dataset save-as D.hdf5 D.hdf5 --overwrite", "being saved"),
    ("dataset info i3_1.tif", "not an HDF5 file"),
    ("--add-sample D.hdf5 c", "at least FILENAME NAME IMAGE"),
    ("--create-dataset X.hdf5 I3 two", "N_LABELS must be a whole number"),
])
def test_user_errors_exit_1_with_one_line_and_leave_the_file(i3_files, capsys, argv, message):
    assert run("dataset create D.hdf5 I3 2", capsys)[0] == 0
    assert run("dataset add-sample D.hdf5 a i3_1.tif i3_label_11.tif -", capsys)[0] == 0
    before = file_hash("D.hdf5")
    code, out, err = run(argv, capsys)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert "Traceback" not in err
    assert file_hash("D.hdf5") == before


def test_usage_errors_exit_2(i3_files, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["dataset", "create", "D.hdf5", "I3", "two"])
    assert exc.value.code == 2


def test_original_files_through_the_cli(shared_data, tmp_path, capsys):
    src = shared_data / "original-format" / "orig_dataset.hdf5"
    path = tmp_path / "o.hdf5"
    path.write_bytes(src.read_bytes())
    code, out, _ = run(["dataset", "info", str(path), "--json"], capsys)
    assert code == 0 and [s["name"] for s in json.loads(out)["samples"]] == ["s2d", "s3d"]
    before = logical_hash(path)
    assert run(["dataset", "crop", str(path), "s3d", "--z", "0", "4", "--new-name", "c"], capsys)[0] == 0
    assert run(["dataset", "remove-sample", str(path), "c"], capsys)[0] == 0
    assert logical_hash(path) == before
