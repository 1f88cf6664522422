"""Eq. 5-6: the early-stopping score S on hand-made maps."""

import pytest
import torch

from coloc.weightmap.stopping import stopping_score, thresholded


def blob(size=32, box=(4, 4, 12, 12), value=1.0):
    maps = torch.zeros(size, size)
    x0, y0, x1, y1 = box
    maps[y0:y1 + 1, x0:x1 + 1] = value
    return maps


def test_a_single_blob_scores_one():
    maps = torch.stack([blob(), blob(box=(10, 2, 30, 20), value=0.4)])
    assert stopping_score(maps).tolist() == pytest.approx([1.0, 1.0])


def test_a_second_blob_outside_the_largest_contours_box_lowers_s():
    maps = blob(box=(2, 2, 13, 13)) + blob(box=(20, 20, 25, 25), value=0.5)  # 144 and 36 px
    score = stopping_score(maps[None])[0].item()
    assert score == pytest.approx(144 / (144 + 0.5 * 36), abs=1e-6)


def test_weights_below_a_tenth_of_the_max_do_not_count():
    maps = blob() * 0.9 + 0.09  # a floor below max/10 everywhere else
    assert torch.equal(thresholded(maps[None])[0] > 0, blob()[None][0] > 0)
    assert stopping_score(maps[None])[0].item() == pytest.approx(1.0)
    floor = blob() * 0.8 + 0.2  # a floor above max/10: the whole image is one blob
    assert stopping_score(floor[None])[0].item() == pytest.approx(1.0)


def test_an_all_zero_map_scores_zero_and_the_batch_keeps_its_shape():
    scores = stopping_score(torch.stack([torch.zeros(16, 16), blob(16, (2, 2, 5, 5))]))
    assert scores.dtype == torch.float32 and scores.tolist() == [0.0, 1.0]
