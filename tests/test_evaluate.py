"""The shared evaluator (coloc/evaluate.py) on a hand-made case with known CorLoc."""

import numpy as np
import pytest
import torch
from torch.nn import Identity

from coloc.evaluate import Evaluation, evaluate


def first_channel(model, batch):
    """Score maps that are the image's first channel (already at input resolution)."""
    return model(batch["image"])[:, 0]


def square_sample(index, at, size=32):
    image = torch.zeros(3, size, size)
    x, y = at
    image[0, y : y + 8, x : x + 8] = 1.0
    box = torch.tensor([[8.0, 8.0, 15.0, 15.0]])  # the GT square is always at (8, 8)
    return {"image": image, "label": 0, "family": "toy", "boxes": box,
            "mask": torch.zeros(size, size, dtype=torch.uint8),
            "part_mask": torch.zeros(size, size, dtype=torch.bool), "index": index}


def test_evaluation_of_a_hand_made_case_gives_the_known_corloc():
    # two maps on the GT square, one shifted by 3 px, one far away. The protocol's box is
    # (x, y, x + w, y + h): one pixel wider than the square, so IoU 64/81 on the square
    # and 40/105 for the shifted one.
    dataset = [square_sample(0, (8, 8)), square_sample(1, (8, 8)), square_sample(2, (11, 8)),
               square_sample(3, (20, 20))]
    result = evaluate(first_channel, Identity(), dataset, batch_size=3, max_box_acc=True)
    assert result.corloc == {"0.3": 75.0, "0.5": 50.0, "0.7": 50.0, "mean": pytest.approx(175 / 3)}
    np.testing.assert_allclose(result.ious, [64 / 81, 64 / 81, 40 / 105, 0.0])
    assert result.boxes[0].tolist() == [8, 8, 16, 16] and result.indices.tolist() == [0, 1, 2, 3]
    assert result.max_box_acc_v2["0.5"] == 50.0 and result.rule == "raw"
    again = Evaluation.from_dict(result.to_dict())
    assert again.corloc == result.corloc and np.array_equal(again.boxes, result.boxes)


def test_label_free_map_scores_are_averaged_over_the_split():
    # a map score (e.g. WeightMap's S) sees every batch's maps; the split's mean is kept
    dataset = [square_sample(i, (8, 8) if i < 3 else (20, 20)) for i in range(4)]
    seen = []

    def area(maps):
        seen.append(len(maps))
        return (maps > 0).flatten(1).float().mean(dim=1) * 0 + torch.arange(len(maps))

    result = evaluate(first_channel, Identity(), dataset, batch_size=3, max_box_acc=False,
                      map_scores={"rank": area})
    assert seen == [3, 1] and result.scores == {"rank": pytest.approx((0 + 1 + 2 + 0) / 4)}
    assert evaluate(first_channel, Identity(), dataset, max_box_acc=False).scores == {}
