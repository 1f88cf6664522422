"""The shared report kit (coloc/report.py): claims decided with a seed resolution and
recorded as data, threshold curves that agree with CorLoc, tables without plumbing."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from coloc import caml, report
from coloc.report import FAILS, HOLDS, NOT_RUN, WITHIN_NOISE, Claim


def test_no_effect_is_within_noise_even_when_the_seeds_agree_exactly():
    assert Claim("X", "Table 7", "A beats B", 6.9, 0.0, 0.0).verdict == "within noise"
    assert Claim("X", "Table 7", "A beats B", 6.9, 0.1, 0.0).verdict == "holds"
    assert Claim("X", "Table 7", "A beats B", 6.9, -0.1, 0.0).verdict == "does not hold"


def test_seed_resolution_is_two_root_two_pooled_sd():
    # two configurations, three seeds each: deviations (-1, 0, 1) and (-2, 0, 2)
    resolution = report.seed_resolution([[9.0, 10.0, 11.0], [18.0, 20.0, 22.0]])
    pooled_sd = math.sqrt((2 + 8) / 4)  # sum of squares over 2 + 2 degrees of freedom
    assert resolution == pytest.approx(2 * math.sqrt(2) * pooled_sd)
    with pytest.raises(ValueError, match="two or more seeds"):
        report.seed_resolution([[1.0], [2.0]])


@pytest.mark.parametrize(("published", "measured", "verdict"), [
    (5.0, 3.0, HOLDS), (5.0, 2.0, HOLDS), (5.0, 1.9, WITHIN_NOISE), (5.0, -2.0, FAILS),
    (-4.0, -2.5, HOLDS), (-4.0, 2.5, FAILS), (None, 2.0, HOLDS), (5.0, None, NOT_RUN),
])
def test_a_claim_holds_only_beyond_the_resolution_in_the_papers_direction(
        published, measured, verdict):
    assert Claim("X", "Table 1", "A beats B", published, measured, 2.0).verdict == verdict


def test_claims_sentence_says_each_claim_that_does_not_hold():
    claims = [Claim("X", "Table 3", "A beats B", 3.7, 0.2, 1.0),
              Claim("X", "Table 3", "A beats C", 2.0, 4.0, 1.0),
              Claim("X", "Table 4", "A beats D", None, None, 1.0)]
    sentence = report.claims_sentence(claims)
    assert sentence.startswith("1 of 2 claims measured here hold")
    assert 'Table 3, "A beats B": published +3.70, measured +0.20 points (within noise' in sentence
    assert sentence.endswith("; 1 not run.")


def test_claims_are_recorded_per_configuration_and_read_back(tmp_path):
    config = caml.profile("synthetic")
    claims = [Claim("CAML", "Table 3", "A beats B", 3.7, 5.0, 1.0)]
    path = report.record_claims("chapter", claims, config, tmp_path)
    assert path == tmp_path / "claims" / "chapter" / f"synthetic-{config.hash()}.json"
    assert report.read_claims("chapter", config, tmp_path) == claims
    assert report.read_claims("chapter", config.replace(seed=1), tmp_path) is None


def test_show_drops_the_index():
    html = report.show(pd.DataFrame({"a": [1.234]}, index=["row"])).data
    assert "row" not in html and "1.23" in html


def test_one_box_at_the_corloc_threshold_is_corloc(tmp_path):
    config = caml.profile("synthetic", image_size=32, train_samples=8, val_samples=4,
                          test_samples=16, epochs=1, batch_size=8, pretrained=False)
    result = caml.run(config, tmp_path)
    from coloc.runs import dataset_split

    curves = report.threshold_curves({"run": result}, dataset_split(config, "test"))
    one_box = curves["run"]["one box"]
    assert one_box.shape == (100,)
    assert one_box[20] == pytest.approx(result.test.corloc["0.5"])  # tau 0.2 = CorLoc
    assert np.all(curves["run"]["every contour"] >= one_box - 1e-9)  # more boxes, never worse
    assert torch.is_tensor(result.score_maps(next(iter(
        report.first_batches(dataset_split(config, "test"), 2, 2)))))
