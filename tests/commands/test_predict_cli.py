"""run.py predict / evaluate end to end, and the original DeepSCEM's models predicting here."""

import json

import h5py
import numpy as np
import pytest

from deepscem import cli
from deepscem.dataset import Dataset

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from deepscem.config import UNetConfig
    from deepscem.models.storage import model_info_from, save_model
    from deepscem.models.unet import build_unet

    config = UNetConfig(dim=2, filters=4, depth=2, outputs=2, normalization="none")
    model = build_unet(config)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    save_model(model, path, model_info_from(model, config))
    return path


@pytest.fixture
def labelled(tmp_path):
    from synthetic_data import synthetic_volume

    image, mask = synthetic_volume((3, 30, 44))
    path = tmp_path / "data.hdf5"
    with Dataset.create(path, "data", 2) as ds:
        ds.add_sample("a", image, [mask, None])
    return path


def test_predict_then_evaluate(tiny_model, labelled, tmp_path, capsys):
    out = tmp_path / "pred.hdf5"
    assert cli.main(["predict", str(tiny_model), str(labelled), str(out), "--patch", "1", "16",
                     "16", "--overlap", "--batch-size", "3", "--threshold", "0.5"]) == 0
    text = capsys.readouterr().out
    assert "device: " in text and f"wrote {out}" in text
    with h5py.File(out, "r") as f:
        assert sorted(f["a"]) == ["image", "prediction_0000", "prediction_0001"]
        assert f["a/prediction_0000"].dtype == np.uint8
    csv_path, json_path = tmp_path / "scores.csv", tmp_path / "scores.json"
    assert cli.main(["evaluate", str(labelled), str(out), "--csv", str(csv_path), "--json",
                     str(json_path)]) == 0
    table = capsys.readouterr().out
    assert "F1" in table and "(all)" in table
    data = json.loads(json_path.read_text())
    assert [(r["sample"], r["label"]) for r in data["rows"]] == [("a", 0), ("a", 1)]
    assert csv_path.read_text().startswith("label,sample,f1,iou")


def test_z_smooth_smooths_the_saved_probabilities_along_z(tiny_model, labelled, tmp_path):
    from scipy.ndimage import gaussian_filter1d

    plain, smooth = tmp_path / "plain.hdf5", tmp_path / "smooth.hdf5"
    args = [str(tiny_model), str(labelled)]
    assert cli.main(["predict", *args, str(plain), "--patch", "1", "16", "16"]) == 0
    assert cli.main(["predict", *args, str(smooth), "--patch", "1", "16", "16", "--z-smooth", "1"]) == 0
    with h5py.File(plain, "r") as p, h5py.File(smooth, "r") as s:
        layer = s["a/prediction_0001"]
        assert layer.attrs["z_smooth"] == 1.0 and "z_smooth" not in p["a/prediction_0001"].attrs
        np.testing.assert_allclose(layer[()], gaussian_filter1d(p["a/prediction_0001"][()], 1.0, axis=0),
                                   rtol=1e-5, atol=1e-6)
    assert cli.main(["predict", *args, str(tmp_path / "x.hdf5"), "--z-smooth", "-1"]) == 1


def test_tta_and_its_number_of_transforms(tiny_model, labelled, tmp_path):
    args = [str(tiny_model), str(labelled)]
    outs = {}
    for name, extra in (("plain", []), ("tta", ["--tta"]), ("t8", ["--tta-transforms", "8"]),
                        ("t2", ["--tta-transforms", "2"]), ("t4", ["--tta", "--tta-transforms", "4"])):
        assert cli.main(["predict", *args, str(tmp_path / f"{name}.hdf5"), "--patch", "1", "16",
                         "16", *extra]) == 0
        with h5py.File(tmp_path / f"{name}.hdf5", "r") as f:
            outs[name] = f["a/prediction_0000"][()]
    np.testing.assert_array_equal(outs["tta"], outs["t8"])  # --tta is the 8 transforms
    for a, b in (("plain", "t2"), ("t2", "t4"), ("t4", "t8")):  # an untrained net is not
        assert np.abs(outs[a] - outs[b]).max() > 1e-4, (a, b)     # rotation-invariant
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["predict", "m", "d", "o", "--tta-transforms", "3"])


def test_overlap_flag_forms():
    parser = cli.build_parser()
    base = ["predict", "m", "d", "o"]
    assert parser.parse_args(base).overlap is None  # auto: sized from volume, memory, network
    assert parser.parse_args(base + ["--overlap"]).overlap == 0.25
    assert parser.parse_args(base + ["--overlap", "0.5"]).overlap == 0.5
    assert parser.parse_args(base + ["--no-overlap"]).overlap == 0.0


def test_not_a_model_and_existing_output_are_clear_errors(tiny_model, labelled, tmp_path,
                                                          capsys):
    fake = tmp_path / "fake.h5"
    fake.write_text("not a model")
    out = tmp_path / "out.hdf5"
    assert cli.main(["predict", str(fake), str(labelled), str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a model file" in err and "Traceback" not in err
    assert not out.exists()
    out.write_bytes(b"keep me")
    assert cli.main(["predict", str(tiny_model), str(labelled), str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert cli.main(["predict", str(tiny_model), str(labelled), str(tmp_path / "new.hdf5"),
                     "--patch", "1", "0", "16"]) == 1
    assert "patch" in capsys.readouterr().err
    assert cli.main(["evaluate", str(labelled), str(tmp_path / "missing.hdf5")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_original_models_predict_here(shared_data, tmp_path):
    from deepscem.config import PredictConfig
    from deepscem.evaluation import evaluate
    from deepscem.inference.predictor import predict_dataset
    from deepscem.models.storage import load_model

    d = shared_data / "original-format"
    model, info = load_model(d / "orig_unet2d_res_f8_d3_o2_trained.h5")
    out = predict_dataset(model, info, d / "orig_dataset.hdf5", tmp_path / "p2d.hdf5",
                          PredictConfig(patch=(64, 256, 256)))
    with h5py.File(out, "r") as ours, h5py.File(d / "orig_pred_2d_overlap_256_float.hdf5") as orig:
        for sample in orig:
            for layer in ("prediction_0000", "prediction_0001"):
                diff = np.abs(ours[sample][layer][()] - orig[sample][layer][()])
                assert diff.mean() < 0.005, (sample, layer)   # borders: different padding
    report = evaluate(d / "orig_pred_2d_overlap_256_float.hdf5", out, objects=False)
    assert all(r.voxels.scores()["f1"] > 0.95 for r in report.overall)

    model, info = load_model(d / "orig_unet3d_vgg_f4_d2_o1.h5")
    with pytest.warns(UserWarning, match="softmax over a single output channel"):
        out = predict_dataset(model, info, d / "orig_dataset.hdf5", tmp_path / "p3d.hdf5",
                              PredictConfig(patch=(4, 32, 32), overlap=0.5))
    with h5py.File(out, "r") as ours, h5py.File(d / "orig_pred_3d_overlap_4x32x32_float.hdf5") \
            as orig:
        for sample in orig:
            np.testing.assert_allclose(ours[sample]["prediction_0000"][()],
                                       orig[sample]["prediction_0000"][()], atol=1e-5)


def test_images_only_and_unlabelled_samples_predict_but_do_not_train_or_score(tiny_model, tmp_path, capsys):
    """Issue 12: a 0-label dataset and a sample added without labels predict like any other; train
    refuses them with one line; evaluate names the unlabelled sample instead of scoring it."""
    from synthetic_data import synthetic_volume

    image, _ = synthetic_volume((3, 32, 32))
    images, unlabelled = tmp_path / "U.hdf5", tmp_path / "L.hdf5"
    np.save(tmp_path / "img.npy", image)
    assert cli.main(["--create-dataset", str(images), "U", "0", "--add-sample", str(images), "a",
                     str(tmp_path / "img.npy")]) == 0
    assert cli.main(["dataset", "create", str(unlabelled), "L", "2"]) == 0
    assert cli.main(["dataset", "add-sample", str(unlabelled), "a", str(tmp_path / "img.npy")]) == 0
    for source in (images, unlabelled):
        out = tmp_path / f"pred_{source.stem}.hdf5"
        assert cli.main(["predict", str(tiny_model), str(source), str(out), "--patch", "1", "16", "16"]) == 0
        with h5py.File(out, "r") as f:
            assert sorted(f["a"]) == ["image", "prediction_0000", "prediction_0001"]
    capsys.readouterr()
    assert cli.main(["evaluate", str(unlabelled), str(tmp_path / "pred_L.hdf5")]) == 1  # nothing to score
    assert "'a' has nothing annotated in the reference" in capsys.readouterr().err
    for source, words in ((unlabelled, "nothing annotated"), (images, "images only")):
        code = cli.main(["train", str(tiny_model), str(tmp_path / "m.keras"), str(source), str(source),
                         "--patch", "1", "16", "16", "--steps-per-epoch", "1", "--epochs", "1"])
        assert code == 1 and words in capsys.readouterr().err
