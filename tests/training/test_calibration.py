"""Threshold calibration on held-out data: histograms, the choice, the bias fold, and the
trainer calling it only when validation data of its own exists."""

import numpy as np
import pytest
from training_data import blob_dataset

from deepscem.config import TrainConfig, UNetConfig
from deepscem.training import calibration as cal

keras = pytest.importorskip("keras")


class _Fixed:
    """A 'model' whose output is given: predict_on_batch(x) returns x itself."""

    def predict_on_batch(self, x):
        return x


def _batches(rng, top, overlap=0.05):
    """10 % labelled voxels scoring in [top - overlap, 1], the rest in [0, top]: the best
    threshold is ``top``."""
    for _ in range(4):
        y = (rng.random((4, 100, 100, 1)) < 0.1).astype(np.float32)
        p = np.where(y > 0, rng.uniform(top - overlap, 1.0, y.shape), rng.uniform(0.0, top, y.shape))
        yield p.astype(np.float32), y


def test_histograms_and_the_chosen_threshold(rng):
    pos, neg = cal.histograms(_Fixed(), _batches(rng, 0.7), 1, False, (2, 2))
    assert pos.sum() + neg.sum() == 4 * 4 * 96 * 96  # the 2-voxel border left out
    curve = cal.iou_curve(pos[0], neg[0])
    best = cal.THRESHOLDS[int(np.argmax(curve))]
    assert best == 0.7
    # the IoU at 0.5 from the histogram equals the one counted directly
    tp, fp, fn = (pos[0][200:].sum(), neg[0][200:].sum(), pos[0][:200].sum())
    assert curve[cal.THRESHOLDS.index(0.5)] == pytest.approx(tp / (tp + fp + fn))
    (row,) = cal.choose(pos, neg, ["mito"])
    assert row.applied and row.threshold == best and row.iou > row.iou_at_half + cal.MIN_GAIN
    assert "threshold 0.70 folded into the model" in row.describe()


def test_no_change_without_a_real_gain_or_without_enough_labelled_voxels(rng):
    pos, neg = cal.histograms(_Fixed(), _batches(rng, 0.5, overlap=0.0), 1, False, (0, 0))
    (row,) = cal.choose(pos, neg, ["mito"])  # 0.5 already separates the two
    assert not row.applied and row.threshold == 0.5
    few_pos = pos.copy()
    few_pos[0] = 0
    few_pos[0][300] = cal.MIN_POSITIVES - 1
    (row,) = cal.choose(few_pos, neg, ["mito"])
    assert not row.applied


def test_partial_labels_count_only_annotated_voxels(rng):
    x = np.full((1, 8, 8, 1), 0.9, np.float32)
    y = np.zeros((1, 8, 8, 2), np.float32)  # label, then the annotated mask
    y[0, :4, :, 1] = 1  # only the top half is annotated (and holds no object)
    pos, neg = cal.histograms(_Fixed(), [(x, y)], 1, True, (0, 0))
    assert pos.sum() == 0 and neg.sum() == 32


def test_folding_the_threshold_moves_0_5_to_it(rng):
    from deepscem.models.unet import build_unet

    model = build_unet(UNetConfig(filters=2, depth=1, blocks_per_level=1, block="vgg", outputs=2))
    x = rng.random((2, 16, 16, 1)).astype(np.float32)
    before = np.asarray(model.predict_on_batch(x))
    t = float(np.quantile(before[..., 1], 0.3))
    cal.fold_threshold(model, 1, t)
    after = np.asarray(model.predict_on_batch(x))
    np.testing.assert_allclose(after[..., 0], before[..., 0], atol=1e-6)  # other label untouched
    assert np.array_equal(after[..., 1] > 0.5, before[..., 1] > t)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    return blob_dataset(tmp_path_factory.mktemp("cal") / "s.hdf5", shape=(10, 48, 48))


@pytest.mark.parametrize("holdout, calibrate, expected", [(0.3, True, 1), (0.0, True, 0),
                                                          (0.3, False, 0)])
def test_training_calibrates_only_on_held_out_data(stack, holdout, calibrate, expected):
    from deepscem.models.storage import model_info_from
    from deepscem.models.unet import build_unet
    from deepscem.training.trainer import train

    config = UNetConfig(filters=2, depth=1, blocks_per_level=1, block="vgg", outputs=1)
    model = build_unet(config)
    train_config = TrainConfig(batch_size=2, patch=(1, 32, 32), steps_per_epoch=2, epochs=1,
                               validation_steps=1, seed=0, holdout=holdout, calibrate=calibrate)
    result = train(model, model_info_from(model, config), [stack], [stack], train_config,
                   run_eagerly=True)
    assert len(result.calibration) == expected
    assert result.info.history["calibration"] == [c.as_dict() for c in result.calibration]
    if expected:
        row = result.calibration[0]
        assert row.label == result.info.label_names[0] and row.positives > 0
        assert 0.0 <= row.iou_at_half <= row.iou <= 1.0
