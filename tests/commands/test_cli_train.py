import csv
import shlex
import shutil

import pytest
from training_data import blob_dataset, tiny_unet

from deepscem import cli


def run(argv, capsys):
    code = cli.main(shlex.split(argv) if isinstance(argv, str) else argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def files(tmp_path, monkeypatch):
    from deepscem.models.storage import save_model

    monkeypatch.chdir(tmp_path)
    blob_dataset(tmp_path / "DS.hdf5", shape=(4, 32, 32), n_samples=2)
    blob_dataset(tmp_path / "DS2.hdf5", shape=(4, 32, 32), n_labels=2)
    model, info = tiny_unet(dim=3)
    save_model(model, tmp_path / "unet-3d.h5", info)
    model, info = tiny_unet(dim=2)
    save_model(model, tmp_path / "unet-2d.keras", info)
    return tmp_path


def test_seed_train_model_form(files, capsys):
    # the original DeepSCEM README's example, with a small patch and few steps:
    # --train-model i3-unet-3d-bin-mito.h5 i3-unet-3d-bin-mito-train.h5 I3-MITO-BIN.hdf5 I3-MITO-BIN.hdf5
    #               Dice 1 128 128 128 192 32 64
    code, out, err = run("--train-model unet-3d.h5 unet-3d-train.h5 DS.hdf5 DS.hdf5 Dice 1 2 16 16 2 2 1",
                         capsys)
    assert code == 0, err
    assert "device: " in out and "wrote unet-3d-train.h5" in out
    rows = list(csv.DictReader(open(files / "unet-3d-train.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1"] and rows[0]["val_loss"] != ""
    from deepscem.models.storage import load_model

    model, info = load_model(files / "unet-3d-train.h5")
    assert info.patch_size == (2, 16, 16) and info.history["config"]["keep_best"] is True
    assert len(info.history["epochs"]["loss"]) == 2


def test_train_subcommand_with_options(files, capsys):
    code, out, err = run("train unet-2d.keras out.keras DS.hdf5 DS.hdf5 --loss CrossEntropy --batch-size 2 "
                         "--patch 1 16 16 --steps-per-epoch 2 --epochs 1 --validation-steps 0 --keep-best "
                         "--early-stopping --rotate --flip --deform --intensity --label-focus 50 "
                         "--log run.csv --lr 0.002 --seed 3 --weight-average 0.9 --weight-decay 0.01", capsys)
    assert code == 0, err
    assert (files / "out.keras").is_file() and (files / "run.csv").is_file()
    from deepscem.models.storage import load_model

    _, info = load_model(files / "out.keras")
    assert info.history["config"]["label_focus"] == 0.5 and info.history["config"]["learning_rate"] == 0.002
    assert info.history["config"]["weight_average"] == 0.9 and info.history["config"]["deform"] is True
    assert info.history["config"]["weight_decay"] == 0.01


def test_epochs_and_validation_are_counted_in_patches_unless_given(files, capsys, monkeypatch):
    """Default batch 2: epochs of 256 steps (512 patches) and validation of 32 batches (64
    patches); another batch keeps those patch counts; given steps are kept as given."""
    import deepscem.commands.train as train_command

    seen = []
    monkeypatch.setattr(train_command, "train_files", lambda *a, **k: seen.append(a[4]) or 0)
    for extra, expected in [("", (2, 256, 32)), ("--batch-size 8", (8, 64, 8)),
                            ("--batch-size 8 --steps-per-epoch 10 --validation-steps 0", (8, 10, 0))]:
        code, _, err = run(f"train unet-2d.keras o.keras DS.hdf5 DS.hdf5 {extra}", capsys)
        assert code == 0, err
        assert (seen[-1].batch_size, seen[-1].steps_per_epoch, seen[-1].validation_steps) == expected


def test_clear_errors_before_training(files, capsys):
    (files / "taken.keras").write_bytes(b"")
    code, _, err = run("train unet-2d.keras taken.keras DS.hdf5 DS.hdf5", capsys)
    assert code == 1 and "already exists" in err and err.count("\n") == 1
    code, _, err = run("train unet-2d.keras o.keras DS2.hdf5 DS2.hdf5 --patch 1 16 16", capsys)
    assert code == 1 and "1 output(s) but the training dataset has 2 label(s)" in err
    code, _, err = run("train unet-2d.keras o.keras nope.hdf5 DS.hdf5", capsys)
    assert code == 1 and "nope.hdf5 does not exist" in err
    code, _, err = run("train unet-2d.keras o.keras DS.hdf5 DS.hdf5 --patch 1 64 64", capsys)
    assert code == 1 and "larger than sample" in err
    code, _, err = run("--train-model unet-3d.h5 o.h5 DS.hdf5 DS.hdf5 Dice one 2 16 16 2 1 1", capsys)
    assert code == 1 and "BATCH_SIZE must be a whole number" in err
    code, _, err = run("train unet-2d.keras o.keras DS.hdf5 DS.hdf5 --weight-average 1", capsys)
    assert code == 1 and "weight_average is a momentum in [0, 1)" in err and err.count("\n") == 1
    assert not (files / "o.keras").exists() and not (files / "o.h5").exists()


def test_original_model_and_dataset_train_unchanged(shared_data, tmp_path, capsys, monkeypatch):
    # the original's own training command (README of original-format), shortened to 2 steps
    src = shared_data / "original-format"
    monkeypatch.chdir(tmp_path)
    shutil.copy(src / "orig_dataset.hdf5", "train.hdf5")
    code, out, err = run(f"--train-model {src / 'orig_unet2d_res_f8_d3_o2.h5'} trained.h5 train.hdf5 "
                         "train.hdf5 Dice 4 1 64 64 2 1 1", capsys)
    assert code == 0, err
    from deepscem.models.storage import load_model

    _, info = load_model("trained.h5")
    assert info.patch_size == (1, 64, 64) and info.outputs == 2


def test_auto_prints_its_choices_stores_them_and_keeps_given_options(files, capsys):
    blob_dataset(files / "STACK.hdf5", shape=(12, 32, 32))
    code, out, err = run("train unet-2d.keras auto.keras STACK.hdf5 STACK.hdf5 --auto --patch 1 16 16 "
                         "--steps-per-epoch 1 --epochs 2 --time-limit 5 --validation-steps 1 --seed 0 "
                         "--calibrate", capsys)
    assert code == 0, err
    assert "auto: 2D model" in out and "held back" in out and "final weights" in out
    assert "kept as given: patch=(1, 16, 16)" in out and "time_limit_minutes=5.0" in out
    assert out.index("auto: ") < out.index("patch (1, 16, 16)")  # printed before training starts
    from deepscem.models.storage import load_model

    _, info = load_model(files / "auto.keras")
    stored = info.history["config"]
    assert stored["holdout"] == 0.15 and stored["keep_best_on"] == "score" and stored["epochs"] == 2
    assert stored["keep_best"] is False  # the cosine schedule's last weights
    assert stored["patch"] == [1, 16, 16] and stored["lr_schedule"] == "cosine"
    assert info.normalization == "percentile 0.5 99.5"
    # asked to, the held-back slices also chose the threshold: said, and stored with the record
    assert out.count("calibration: label 0: threshold") == 1 and stored["calibrate"] is True
    assert "(weights of epoch" not in out  # the final weights, not the best epoch's
    assert [c["label"] for c in info.history["calibration"]] == ["label 0"]


def test_auto_keeps_an_explicit_keep_best(files, capsys):
    blob_dataset(files / "STACK.hdf5", shape=(12, 32, 32))
    code, out, err = run("train unet-2d.keras auto.keras STACK.hdf5 STACK.hdf5 --auto --keep-best "
                         "--patch 1 16 16 --steps-per-epoch 1 --epochs 1 --validation-steps 1 --seed 0",
                         capsys)
    assert code == 0, err
    assert "kept as given:" in out and "keep_best=True" in out
    # the threshold is calibrated only when asked (off by default, also under --auto)
    code, out, err = run("train unet-2d.keras auto2.keras STACK.hdf5 STACK.hdf5 --auto "
                         "--patch 1 16 16 --steps-per-epoch 1 --epochs 1 --validation-steps 1 --seed 0",
                         capsys)
    assert code == 0 and "calibration:" not in out
    from deepscem.models.storage import load_model

    _, info = load_model(files / "auto.keras")
    assert info.history["config"]["keep_best"] is True


def test_model_create_with_context(files, capsys):
    blob_dataset(files / "STACK.hdf5", shape=(12, 32, 32))
    code, out, err = run("model create ctx.keras --filters 2 --depth 1 --context 2", capsys)
    assert code == 0, err
    from deepscem.models.storage import load_model

    model, info = load_model(files / "ctx.keras")
    assert model.inputs[0].shape[-1] == 5 and info.unet.context == 2
    code, out, err = run("model create auto.keras --filters 2 --depth 1 --context auto --data STACK.hdf5",
                         capsys)
    assert code == 0 and "context" in out, err
    code, _, err = run("model create no.keras --context auto", capsys)
    assert code == 1 and "--data" in err
    # --context not given but --data given: the data chooses, as with --context auto
    from deepscem.training.autoconfig import measured_context

    code, out, err = run("model create chosen.keras --filters 2 --depth 1 --data STACK.hdf5", capsys)
    assert code == 0 and "context" in out, err
    measured = measured_context([files / "STACK.hdf5"])[0]
    assert load_model(files / "chosen.keras")[1].unet.context == measured
    code, out, err = run("model create plain.keras --filters 2 --depth 1", capsys)
    assert code == 0 and load_model(files / "plain.keras")[1].unet.context == 0
    code, _, err = run("model create no.keras --dim 3 --context 1", capsys)
    assert code == 1 and "context" in err
