"""CAML's pretext network (coloc/caml/model.py): outputs the losses read."""

import pytest
import torch

from coloc.caml.model import PretextNet
from coloc.caml.ptap import CAAM, PTAP
from coloc.models import build_backbone


def test_pretext_net_returns_what_the_losses_read():
    net = PretextNet(build_backbone("small_cnn"), {"rotation": 4, "scale": 3}, PTAP(256))
    out = net(torch.randn(2, 3, 64, 64))
    assert out["features"].shape == out["weighted"].shape == (2, 256, 8, 8)
    assert out["attention"].shape == (2, 8, 8) and (out["attention"] >= 0).all()
    assert {k: v.shape for k, v in out["logits"].items()} == {
        "rotation": (2, 4),
        "scale": (2, 3),
    }
    baseline = PretextNet(build_backbone("small_cnn"), {"rotation": 4}, CAAM())
    out = baseline(torch.randn(2, 3, 64, 64))
    assert out["weighted"] is out["features"]
    assert torch.allclose(out["attention"], out["features"].mean(dim=1))
    with pytest.raises(ValueError, match="head"):
        PretextNet(build_backbone("small_cnn"), {}, CAAM())
