"""Tables and measurements of the CAML ablation and pretext chapters (coloc/caml/report.py,
and the shared coloc/report.py), on recorded stand-in runs and on stub models with known maps."""

import pytest
import torch
from torch import nn

from coloc import caml
from coloc import report as kit
from coloc.caml import report
from coloc.caml.ptap import normalize_attention
from coloc.data import load
from coloc.evaluate import Evaluation
from coloc.maps import upsample_maps
from coloc.reference import caml as reference
from tests.caml.test_summary import record


class FixedMaps(nn.Module):
    """A stand-in model: the same attention map and weighted features for every image."""

    def __init__(self, attention: torch.Tensor, weighted: torch.Tensor | None = None) -> None:
        super().__init__()
        self.attention, self.weighted = attention, weighted

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        n = len(images)
        out = {"attention": self.attention.expand(n, -1, -1)}
        if self.weighted is not None:
            out["weighted"] = self.weighted.expand(n, -1, -1, -1)
        return out


def gaussian(n: int = 8, width: float = 0.5) -> torch.Tensor:
    c = torch.linspace(-1, 1, n)
    ys, xs = torch.meshgrid(c, c, indexing="ij")
    return torch.exp(-(xs**2 + ys**2) / width)[None]


def test_pretext_table_puts_measured_beside_published_and_says_not_run(tmp_path):
    config = caml.profile("synthetic", epochs=1)
    runs = {}
    for method, value, changes in (("baseline", 20.0, dict(use_caml=False, pooling="caam")),
                                   ("ours", 31.5, {})):
        run_config = config.replace(**changes)
        record(run_config, tmp_path, value)
        runs[method] = caml.find_run(run_config, tmp_path)
    table = report.pretext_table("table7", {"rotation": runs}, "synthetic")
    row = table[table[("", "task")] == "rotation"].iloc[0]
    assert row[("measured (synthetic)", "baseline")] == 20.0
    assert row[("measured (synthetic)", "CAML")] == 31.5
    assert row[("measured (synthetic)", "gain")] == 11.5
    published = reference.table("table7").row(task="rotation", dataset="cub")
    assert row[("published (cub)", "CAML")] == published["ours"]
    scale = table[table[("", "task")] == "scale"].iloc[0]
    assert scale[("measured (synthetic)", "CAML")] == "not run"
    assert len(table) == 6


def test_corloc_beside_accepts_an_evaluation_of_a_trained_model():
    corloc = {"0.3": 50.0, "0.5": 25.0, "0.7": 5.0, "mean": 26.67}
    evaluation = Evaluation(corloc=corloc, max_box_acc_v2=None, ious=torch.zeros(1).numpy(),
                            boxes=torch.zeros(1, 4, dtype=torch.int64).numpy(),
                            indices=torch.zeros(1, dtype=torch.int64).numpy(), rule="raw",
                            threshold=0.2)
    table = kit.corloc_beside(reference.table("supp_table1"), {False: evaluation},
                              match="ptap_test")
    measured = [c for c in table.columns if c[0].startswith("measured")]
    assert list(table.loc[0, measured]) == [50.0, 25.0, 5.0, 26.67]
    assert set(table.loc[1, measured]) == {"not run"}


def test_lower_theta_bg_puts_more_of_the_map_and_of_the_object_into_the_negative():
    dataset = load("synthetic", split="test", image_size=32, num_samples=4)
    flat_top = gaussian(32, width=4.0)  # many levels between 92 % and 97.5 % of the peak
    shares = report.background_share(FixedMaps(flat_top), dataset, [1.5, 2.3, 2.6],
                                     headroom=0.05)
    pixels = shares["pixels in M_bg (%)"].tolist()
    kept = shares["object attention kept in the negative (%)"].tolist()
    assert pixels[0] > pixels[1] > pixels[2] > 0
    assert kept == sorted(kept, reverse=True)
    # the map's peak (the centre pixels) is never in M_bg: less than all the mass is kept
    assert kept[0] < 100


def test_pooled_maps_are_the_channel_mean_max_and_bottom_k_of_the_weighted_features():
    weighted = torch.rand(1, 10, 4, 4)
    model = FixedMaps(gaussian(4), weighted)
    images = torch.zeros(2, 3, 16, 16)
    maps = report.pooled_maps(model, images, {"average": (1.0, True), "max": (1e-4, True),
                                              "bottom": (0.3, False)})
    expected = {"average": weighted.mean(1), "max": weighted.amax(1),
                "bottom": weighted.topk(3, dim=1, largest=False).values.mean(1)}
    for label, values in expected.items():
        assert torch.allclose(maps[label], upsample_maps(values.expand(2, -1, -1), 16))


def test_background_share_uses_the_losses_normalization():
    a = gaussian()
    assert torch.allclose(normalize_attention(a, 0.05).amax(), torch.tensor(1 / 1.05))
    with pytest.raises(ValueError, match="headroom"):
        report.background_share(FixedMaps(a), load("synthetic", split="test", image_size=32,
                                                   num_samples=2), [2.3], headroom=0.0)


def test_zero_channel_share_counts_zero_channels_per_pixel():
    weighted = torch.ones(1, 10, 2, 2)
    weighted[0, :4, 0, 0] = 0  # 40 % zeros at one pixel, 0 % at the other three
    shares = report.zero_channel_share(FixedMaps(gaussian(2), weighted),
                                       load("synthetic", split="test", image_size=32,
                                            num_samples=3))
    assert shares["zero channels per pixel (%)"] == pytest.approx(10.0)
    assert shares["pixels with >= 30 % zero channels (%)"] == pytest.approx(25.0)



def test_pooling_corloc_scores_each_pooling_of_the_same_features():
    centre_box = torch.tensor([[6, 6, 25, 25]])  # the centre cells, widened by bicubic
    dataset = [dict(s, boxes=centre_box)
               for s in load("synthetic", split="test", image_size=32, num_samples=3)]
    weighted = torch.zeros(1, 10, 4, 4)
    weighted[0, :, 1:3, 1:3] = 1.0  # every channel fires on the centre 2x2 cells
    weighted[0, 0, 0, 0] = 20.0  # one channel fires alone, strongly, in a corner
    table = report.pooling_corloc(FixedMaps(gaussian(4), weighted), dataset,
                                  {"max": (1e-4, True), "bottom-30%": (0.3, False)})
    assert table["pooling"].tolist() == ["max", "bottom-30%"]
    by_pooling = table.set_index("pooling")["CorLoc@0.5"]
    assert by_pooling["max"] == 0.0  # the corner outshines the centre: box in the corner
    assert by_pooling["bottom-30%"] == 100.0  # the corner's other channels are 0


# ----------------------------------------------------------------------------- claims


def stand_in(corloc: dict | None = None, val: list | None = None, hinge=None):
    """A recorded run's surface: test CorLoc and the curves the report reads."""
    from types import SimpleNamespace

    losses = {} if hinge is None else {"hinge_active": [hinge]}
    test = SimpleNamespace(corloc=corloc or {}, max_box_acc_v2={"mean": 0.0})
    return SimpleNamespace(test=test, curves={"val": val or [], "epoch_losses": losses})


def test_validation_choice_is_made_on_val_not_test():
    better_on_val = stand_in({"0.5": 10.0}, [{"corloc@0.5": 60.0, "corloc@mean": 50.0}], 0.2)
    better_on_test = stand_in({"0.5": 90.0}, [{"corloc@0.5": 40.0, "corloc@mean": 30.0}], 1.0)
    choice = report.validation_choice({"a": better_on_val, "b": better_on_test})
    assert choice.chosen == "a"
    assert choice.table.to_dict("records")[1] == {
        "setting": "b", "val CorLoc@0.5 (%)": 40.0, "val CorLoc mean (%)": 30.0,
        "hinge open (last epoch)": 1.0}
    assert "a reaches 60.0 %" in choice.sentence and "b 40.0 %" in choice.sentence


def test_table_claims_take_the_published_effect_from_the_table(monkeypatch):
    monkeypatch.setattr(report, "Run", type(stand_in()))  # stand-ins count as runs
    ours = stand_in({"mean": 60.0})
    claims = report.table_claims("table6", "pooling", "top-70%", ours, {
        "max": ("top-70 % beats max", stand_in({"mean": 59.0})),
        "average": ("top-70 % beats average", None)}, resolution=2.0)
    assert [(c.where, c.published, c.measured, c.verdict) for c in claims] == [
        ("Table 6", round(73.20 - 58.01, 2), 1.0, "within noise"),
        ("Table 6", round(73.20 - 70.94, 2), None, "not run")]


def test_pretext_claims_include_the_spread_over_tasks():
    runs = {"rotation": {"baseline": stand_in({"0.5": 20.0}), "ours": stand_in({"0.5": 50.0})},
            "hflip": {"baseline": stand_in({"0.5": 40.0}), "ours": stand_in({"0.5": 45.0})}}
    claims = report.pretext_claims(runs, "synthetic", resolution=3.0)
    rotation = reference.table("table7").row(task="rotation", dataset="cub")
    assert claims[0].published == round(rotation["ours"] - rotation["baseline"], 2)
    assert [c.measured for c in claims] == [30.0, 5.0, 20.0 - 5.0]  # spread: 20 vs 5
    assert claims[-1].claim.startswith("CAML evens out the tasks")
