"""ui.render: contrast windowing and overlay blending."""

import numpy as np

from ui.render import compose, layer_colour, outline, overlay_weight, to_grey


def test_to_grey_windows_raw_values():
    raw = np.array([[0, 50, 100, 200]], np.uint16)
    assert to_grey(raw, 50, 100).tolist() == [[0, 0, 255, 255]]
    assert to_grey(np.full((2, 2), 7.0, np.float32), 7.0, 7.0).tolist() == [[0, 0], [0, 0]]  # no NaN


def test_overlay_blends_only_where_the_mask_is():
    grey = np.full((1, 2), 100, np.uint8)
    mask = np.array([[0, 1]], np.uint8)
    rgb = compose(grey, [(mask, (255, 0, 0))], opacity=0.5)
    assert rgb[0, 0].tolist() == [100, 100, 100]
    assert rgb[0, 1].tolist() == [178, 50, 50]


def test_float_predictions_weigh_by_value_and_colours_differ():
    assert np.allclose(overlay_weight(np.array([-0.5, 0.05, 0.55, 2.0], np.float32)), [0, 0, 0.5, 1])
    assert layer_colour("label_0000") != layer_colour("prediction_0000")
    assert layer_colour("label_0000") != layer_colour("label_0001")


def test_compose_of_a_transposed_plane():  # the YZ plane is drawn transposed
    mask = np.zeros((4, 6), np.uint8)
    mask[1, 2] = 1
    grey = to_grey(np.zeros((4, 6), np.uint8).T, 0, 255)
    rgb = compose(grey, [(mask.T, (255, 0, 0))], opacity=1.0)
    assert rgb[2, 1].tolist() == [255, 0, 0] and (rgb[..., 1] == 0).all() and rgb[..., 0].sum() == 255


def test_outline_keeps_only_the_boundary():
    mask = np.zeros((5, 5), np.uint8)
    mask[1:4, 1:4] = 1
    ring = outline(mask)
    assert ring[2, 2] == 0 and ring[1, 1] == 1 and ring.sum() == 8
