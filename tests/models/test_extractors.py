"""Extractors: shapes, detached normalisation, weights from files, checkpoints and (offline) URLs."""

from __future__ import annotations

import pytest
import torch

from oml_fast.models import ExtractorWithMLP, SmallCNNExtractor, WeightsLoadingError, normalise


def test_normalise_detaches_the_norm():
    x = torch.randn(4, 8, dtype=torch.float64, requires_grad=True)
    normalise(x).sum().backward()
    expected = 1 / x.detach().norm(dim=1, keepdim=True).expand_as(x)  # no gradient through the norm
    assert torch.allclose(x.grad, expected)


def test_small_cnn_and_mlp_shapes():
    torch.manual_seed(0)
    cnn = SmallCNNExtractor(feat_dim=12, width=4, normalise_features=False)
    assert cnn(torch.randn(3, 3, 8, 8)).shape == (3, 12)
    mlp = ExtractorWithMLP(cnn, mlp_features=[16, 5], train_backbone=True)
    out = mlp(torch.randn(3, 3, 8, 8))
    assert out.shape == (3, 5) and mlp.feat_dim == 5
    with pytest.raises(ValueError, match="input must be"):
        cnn(torch.randn(3, 8, 8))


def test_weights_from_file_and_lightning_checkpoint(tmp_path):
    torch.manual_seed(0)
    source = SmallCNNExtractor(feat_dim=8, width=4).eval()
    torch.save(source.state_dict(), tmp_path / "w.pth")
    ckpt = {"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()}, "epoch": 3}
    torch.save(ckpt, tmp_path / "best.ckpt")
    x = torch.randn(2, 3, 8, 8)
    for path in (tmp_path / "w.pth", tmp_path / "best.ckpt"):
        loaded = SmallCNNExtractor(feat_dim=8, width=4, weights=path).eval()
        assert torch.allclose(loaded(x), source(x))


def test_weights_errors(tmp_path):
    with pytest.raises(WeightsLoadingError, match="not found"):
        SmallCNNExtractor(weights=tmp_path / "nope.pth")
    torch.save(SmallCNNExtractor(feat_dim=8, width=4).state_dict(), tmp_path / "w.pth")
    with pytest.raises(WeightsLoadingError, match="do not fit SmallCNNExtractor"):
        SmallCNNExtractor(feat_dim=16, width=4, weights=tmp_path / "w.pth")


def test_url_fails_clearly_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("OML_FAST_CACHE", str(tmp_path))
    # Port 9 on localhost (discard) refuses connections: a download that cannot succeed, no network needed.
    url = "http://127.0.0.1:9/weights/small_cnn.pth"
    with pytest.raises(
        WeightsLoadingError, match=r"cannot download weights from http://127\.0\.0\.1:9.*local path"
    ):
        SmallCNNExtractor(weights=url)
    assert not list(tmp_path.rglob("*.part"))  # no partial file left behind
