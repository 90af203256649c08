"""Models that travel: ONNX export, bioimage.io packages (export, bioimage.io's own test,
re-import by DeepSCEM) and the one-line errors for packages DeepSCEM cannot run."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from deepscem.config import PredictConfig, UNetConfig
from deepscem.errors import ModelError

keras = pytest.importorskip("keras")
pytest.importorskip("onnxruntime")
pytest.importorskip("bioimageio.core")


@pytest.fixture(scope="module")
def tiny():
    """A tiny trained-looking 2D U-Net (random weights, BatchNorm statistics moved off 0/1)."""
    from deepscem.models.storage import model_info_from
    from deepscem.models.unet import build_unet

    config = UNetConfig(filters=2, depth=2, blocks_per_level=1, outputs=1)
    keras.utils.set_random_seed(0)
    model = build_unet(config)
    info = model_info_from(model, config)
    info.label_names = ["mito"]
    return model, info


@pytest.fixture(scope="module")
def package(tiny, tmp_path_factory):
    from deepscem.models.export import ExportCard, export_bioimageio

    model, info = tiny
    out = tmp_path_factory.mktemp("export") / "tiny.zip"
    image = np.random.default_rng(1).random((3, 40, 48)).astype(np.float32)
    card = ExportCard(authors=["Test Author"], training_data="synthetic", scores={"IoU": 0.5})
    return export_bioimageio(model, info, out, image=image, card=card)


def test_exported_onnx_matches_keras_on_the_test_tensor(tiny, tmp_path):
    import onnxruntime as ort

    from deepscem.models.export import export_onnx

    model, _ = tiny
    path = export_onnx(model, tmp_path / "m.onnx")
    x = np.random.default_rng(0).random((2, 32, 48, 1)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert np.abs(y - model.predict_on_batch(x)).max() <= 1e-4


def test_a_wrong_conversion_is_found_retried_and_never_left_behind(tiny, tmp_path, monkeypatch):
    """tf2onnx, after many conversions in one process, once dropped a graph's final Squeeze
    ((1, B, Y, X, C) out): every export is checked against Keras before it is kept."""
    from deepscem.models import onnx_export

    model, _ = tiny
    good = onnx_export.export_onnx(model, tmp_path / "good.onnx")
    probe = onnx_export._probe_input(model)
    expected = np.asarray(model.predict_on_batch(probe), np.float32)
    assert onnx_export._mismatch(good, probe, expected) == ""
    wrong = onnx_export._mismatch(good, probe, expected[None])
    assert wrong == "output shape (1, 8, 8, 1), not (1, 1, 8, 8, 1)"
    assert "outputs differ by 0.5" in onnx_export._mismatch(good, probe, expected + 0.5)
    real = onnx_export._mismatch
    verdicts = iter(["output shape (1, 1, 16, 16, 1), not (1, 16, 16, 1)"])
    monkeypatch.setattr(onnx_export, "_mismatch", lambda *a: next(verdicts, None) or real(*a))
    assert onnx_export.export_onnx(model, tmp_path / "retried.onnx").is_file()  # 2nd try is right
    monkeypatch.setattr(onnx_export, "_mismatch", lambda *a: "output shape wrong")
    with pytest.raises(ModelError, match="conversion of the model is wrong .* in 3 tries"):
        onnx_export.export_onnx(model, tmp_path / "bad.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.onnx", "retried.onnx"]


def test_a_2_5d_model_exports(tmp_path):
    from deepscem.models import onnx_export
    from deepscem.models.unet import build_unet

    model = build_unet(UNetConfig(filters=2, depth=1, blocks_per_level=1, outputs=1, context=1))
    path = onnx_export.export_onnx(model, tmp_path / "ctx.onnx")
    assert onnx_export._probe_input(model).shape == (1, 4, 4, 3) and path.is_file()


@pytest.mark.parametrize("weights", ["onnx", pytest.param("keras_v3", marks=pytest.mark.slow)])
def test_package_passes_bioimageio_test(package, weights):
    """bioimage.io's own test: validation, test tensors reproduced, several input sizes
    (keras_v3 retraces for every size: ~15 s, so behind --runslow)."""
    from bioimageio.core import test_model

    summary = test_model(package, weight_format=weights)
    assert summary.status == "passed", summary.format()


def test_package_holds_card_cover_and_normalisation(package):
    import yaml

    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        rdf = yaml.safe_load(archive.read("rdf.yaml"))
        readme = archive.read("README.md").decode()
    assert {"model.keras", "model.onnx", "cover.png", "test_input.npy", "test_output.npy"} <= names
    pre = rdf["inputs"][0]["preprocessing"]
    assert any(op["id"] == "scale_range" and op["kwargs"]["min_percentile"] == 0
               and op["kwargs"]["max_percentile"] == 100 for op in pre)
    assert rdf["license"] == "CC-BY-4.0" and rdf["authors"][0]["name"] == "Test Author"
    assert "training data: synthetic" in readme and "IoU: 0.5000" in readme


@pytest.mark.parametrize("engine", ["keras", "onnxruntime"])
def test_reimported_package_reproduces_deepscem_prediction(tiny, package, engine):
    from deepscem.inference.predictor import Predictor
    from deepscem.models.bioimageio import load_package

    model, info = tiny
    volume = np.random.default_rng(2).random((2, 40, 56)).astype(np.float32)
    volume[0, 0, 0], volume[0, 0, 1] = 0.0, 1.0  # a volume normalised the DeepSCEM way
    config = PredictConfig(patch=(1, 32, 32), overlap=0.5)
    ours = np.zeros(volume.shape, np.float32)
    Predictor(model, info, config).predict_volume(lambda r: volume[r], volume.shape, [ours])
    forward, package_info = load_package(package, engine=engine)
    assert package_info.dimension == 2 and package_info.tile_multiple == 4
    assert package_info.label_names == ["mito"]
    theirs = np.zeros(volume.shape, np.float32)
    Predictor(None, package_info, config, forward=forward).predict_volume(
        lambda r: volume[r], volume.shape, [theirs])
    assert np.abs(ours - theirs).max() <= 1e-4


def _edited(package: Path, folder: Path, edit) -> Path:
    """The package unpacked into ``folder`` with its rdf.yaml passed through ``edit``."""
    import yaml

    with zipfile.ZipFile(package) as archive:
        archive.extractall(folder)
    rdf = yaml.safe_load((folder / "rdf.yaml").read_text())
    edit(rdf)
    (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    return folder


def _two_inputs(rdf):
    second = dict(rdf["inputs"][0], id="raw2")
    rdf["inputs"].append(second)


def _three_channels(rdf):
    rdf["inputs"][0]["axes"][-1]["channel_names"] = ["r", "g", "b"]


def _torch_weights(rdf):
    rdf["weights"] = {"torchscript": {"source": "model.pt", "pytorch_version": "2.1"}}


@pytest.mark.parametrize("edit, message", [
    (_two_inputs, "2 inputs and 1 outputs"),
    (_three_channels, "3 input channels"),
    (_torch_weights, "torchscript weights"),
])
def test_unsupported_packages_give_one_line_errors(package, tmp_path, edit, message):
    from deepscem.models.bioimageio import load_package

    folder = _edited(package, tmp_path / "pkg", edit)
    if edit is _torch_weights:
        shutil.copy(folder / "model.onnx", folder / "model.pt")
    with pytest.raises(ModelError, match=message) as err:
        load_package(folder)
    assert "\n" not in str(err.value)


def test_broken_zip_is_a_model_error(tmp_path):
    from deepscem.models.bioimageio import is_package, load_package

    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("rdf.yaml", "type: model\nformat_version: 0.5.4\nname: x\n")
    assert is_package(bad)
    with pytest.raises(ModelError, match="not a valid bioimage.io model package"):
        load_package(bad)


def test_test_tile_is_a_normalised_crop_of_the_model_multiple():
    from deepscem.models.export import normalise_like_package, test_crop

    def test_tile(image, multiple, dim, context=0, normalization=None):
        return normalise_like_package(test_crop(image, multiple, dim, context), normalization)

    image = np.random.default_rng(0).random((5, 300, 70)).astype(np.float32) * 0.5 + 0.2
    tile2d = test_tile(image, 16, 2)
    assert tile2d.shape == (256, 64) and tile2d.min() == 0 and tile2d.max() == pytest.approx(1, abs=1e-4)
    stack = test_tile(image, 16, 2, context=1)  # the middle slice with its neighbours last
    assert stack.shape == (256, 64, 3) and stack.min() == 0 and stack.max() == pytest.approx(1, abs=1e-4)
    middle = test_tile(image[2:3], 16, 2)
    assert np.allclose((stack[..., 1] - stack[..., 1].min()) / np.ptp(stack[..., 1]),
                       (middle - middle.min()) / np.ptp(middle), atol=1e-5)
    clipped = test_tile(image, 16, 2, normalization="percentile 1 99")
    assert clipped.min() == 0 and clipped.max() == 1 and (clipped == 1).mean() >= 0.01
    tile3d = test_tile(image, 8, 3)  # Z 5 < 8: mirrored up to one multiple
    assert tile3d.shape == (8, 256, 64) and tile3d.dtype == np.float32


def test_a_2_5d_model_with_percentile_normalisation_travels(tmp_path):
    """A 2.5D model (slice + neighbours as channels, what ``--context auto`` picks for
    isotropic data) trained with percentile normalisation (the default): the package declares
    both, passes bioimage.io's test, and DeepSCEM re-imports it to the same prediction."""
    import yaml
    from bioimageio.core import test_model

    from deepscem.dataset.normalization import scale
    from deepscem.inference.predictor import Predictor
    from deepscem.models.bioimageio import load_package
    from deepscem.models.export import export_bioimageio
    from deepscem.models.storage import model_info_from
    from deepscem.models.unet import build_unet

    config = UNetConfig(filters=2, depth=2, blocks_per_level=1, outputs=1, context=1)
    keras.utils.set_random_seed(3)
    model = build_unet(config)
    info = model_info_from(model, config)
    info.normalization = "percentile 1 99"
    raw = np.random.default_rng(4).normal(100, 20, (5, 40, 48)).astype(np.float32)
    package = export_bioimageio(model, info, tmp_path / "ctx.zip", image=raw)
    summary = test_model(package, weight_format="onnx")
    assert summary.status == "passed", summary.format()
    with zipfile.ZipFile(package) as archive:
        rdf = yaml.safe_load(archive.read("rdf.yaml"))
        test_input = np.load(archive.open("test_input.npy"))
    tensor = rdf["inputs"][0]
    assert tensor["axes"][-1]["channel_names"] == ["z_minus_1", "z", "z_plus_1"]
    assert test_input.shape == (1, 40, 48, 3) and test_input.max() > 1  # raw grey values
    scale_range, clip = (op for op in tensor["preprocessing"] if op["id"] != "ensure_dtype")
    assert scale_range["kwargs"]["min_percentile"] == 1 and scale_range["kwargs"]["max_percentile"] == 99
    assert set(scale_range["kwargs"]["axes"]) == {"y", "x", "channel"}
    assert clip["id"] == "clip" and (clip["kwargs"]["min"], clip["kwargs"]["max"]) == (0, 1)

    forward, package_info = load_package(package, engine="onnxruntime")
    assert package_info.context == 1
    predict = PredictConfig(patch=(1, 32, 32), overlap=0.5)
    theirs = np.zeros(raw.shape, np.float32)
    Predictor(None, package_info, predict, forward=forward).predict_volume(
        lambda r: raw[r], raw.shape, [theirs])
    lo, hi = np.percentile(raw, [1, 99])
    normalised = scale(raw, lo, hi)  # what DeepSCEM's own prediction hands the model
    ours = np.zeros(raw.shape, np.float32)
    Predictor(model, info, predict).predict_volume(lambda r: normalised[r], raw.shape, [ours])
    assert np.abs(ours - theirs).max() <= 1e-4
