"""The extractors agree with OML 4.0's: DINO / DINOv2 transformers give the same embeddings from the same
weights (OML's own ViTExtractor reading a Lightning checkpoint, and its DINOv2 networks), and the zoo
records (names, files, hashes, constructor arguments) are OML's.

OML's ResNet, MLP head and ConcatSiamese are torchvision's modules, which the peers venv stubs out
(see benchmarks/peers.py); the ResNet layout is checked against torchvision's published parameter counts
in tests/models instead.
"""

from __future__ import annotations

import pytest
import torch
from oml_agreement import assert_close

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py seeds every test


def test_vit_extractor_reads_a_lightning_checkpoint_like_omls(tmp_path) -> None:
    from oml.models import ViTExtractor as OmlViTExtractor

    from oml_fast.models import ViTExtractor

    source = ViTExtractor(None, "vits16", normalise_features=False)
    checkpoint = {"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()}}
    checkpoint["state_dict"]["criterion.weight"] = torch.ones(4)
    torch.save(checkpoint, tmp_path / "vit.ckpt")
    ours = ViTExtractor(tmp_path / "vit.ckpt", "vits16", normalise_features=True).eval()
    theirs = OmlViTExtractor(str(tmp_path / "vit.ckpt"), "vits16", normalise_features=True).eval()
    for shape in [(2, 3, 224, 224), (2, 3, 96, 160), (1, 3, 70, 50)]:  # interpolated position embeddings
        x = torch.randn(*shape)
        with torch.no_grad():
            assert_close(ours(x), theirs(x), f"ViT-S/16 embeddings of {list(x.shape)}")
    multi_ours = ViTExtractor(tmp_path / "vit.ckpt", "vits16", False, use_multi_scale=True).eval()
    multi_theirs = OmlViTExtractor(str(tmp_path / "vit.ckpt"), "vits16", False, use_multi_scale=True).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert_close(multi_ours(x), multi_theirs(x), "multi-scale embeddings")


@pytest.mark.parametrize("arch", ["vits14", "vits14_reg"])
def test_dinov2_networks_agree(arch: str) -> None:
    from oml.models.vit_dino.extractor import ViTExtractor as OmlViTExtractor

    from oml_fast.models import ViTExtractor

    theirs = OmlViTExtractor.constructors[arch](pretrained=False).eval()
    ours = ViTExtractor(None, arch, normalise_features=False).eval()
    assert sorted(ours.model.state_dict()) == sorted(theirs.state_dict())
    ours.model.load_state_dict(theirs.state_dict())
    for shape in [(2, 3, 224, 224), (1, 3, 98, 154)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            assert_close(ours(x), theirs(x), f"{arch} embeddings of {list(x.shape)}")


def test_clip_image_tower_agrees() -> None:
    from oml.models.vit_clip.external.model import VisionTransformer as OmlCLIPVisionTransformer

    from oml_fast.models.vit_clip.architecture import CLIPVisionTransformer

    sizes = {"input_resolution": 64, "patch_size": 16, "width": 64, "layers": 2, "heads": 4, "output_dim": 32}
    theirs = OmlCLIPVisionTransformer(**sizes).eval()
    ours = CLIPVisionTransformer(**sizes).eval()
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert_close(ours(x), theirs(x), "CLIP image-tower embeddings")


def test_unicom_network_agrees() -> None:
    from oml.models.vit_unicom.external.vision_transformer import VisionTransformer as OmlUnicom

    from oml_fast.models.vit_unicom.architecture import UnicomVisionTransformer

    sizes = {"input_size": 64, "patch_size": 16, "dim": 64, "embedding_size": 24, "depth": 2, "num_heads": 4}
    theirs = OmlUnicom(**sizes, using_checkpoint=False).eval()
    ours = UnicomVisionTransformer(**sizes, using_checkpoint=False).eval()
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert_close(ours(x), theirs(x), "Unicom embeddings")


def test_zoo_records_are_omls() -> None:
    from oml.models import ExtractorWithMLP as OmlExtractorWithMLP
    from oml.models import ResnetExtractor as OmlResnetExtractor
    from oml.models import ViTCLIPExtractor as OmlViTCLIPExtractor
    from oml.models import ViTExtractor as OmlViTExtractor
    from oml.models import ViTUnicomExtractor as OmlViTUnicomExtractor

    from oml_fast.models import (
        ExtractorWithMLP,
        ResnetExtractor,
        ViTCLIPExtractor,
        ViTExtractor,
        ViTUnicomExtractor,
    )

    for ours, theirs in [
        (ViTCLIPExtractor, OmlViTCLIPExtractor),
        (ViTUnicomExtractor, OmlViTUnicomExtractor),
        (ViTExtractor, OmlViTExtractor),
        (ResnetExtractor, OmlResnetExtractor),
        (ExtractorWithMLP, OmlExtractorWithMLP),
    ]:
        assert list(ours.pretrained_models) == list(theirs.pretrained_models), ours.__name__
        assert list(ours.constructors if hasattr(ours, "constructors") else []) == list(
            getattr(theirs, "constructors", [])
        )
        for name, record in theirs.pretrained_models.items():
            mine = ours.pretrained_models[name]
            for key in (
                "url",
                "hash",
                "fname",
                "is_jitted",
            ):  # OML takes torchvision's ImageNet weights from torchvision
                if key in record:
                    assert mine[key] == record[key], f"{name}: {key}"
            init_args = {k: v for k, v in record["init_args"].items() if k != "extractor_creator"}
            assert {k: v for k, v in mine["init_args"].items() if k != "extractor_creator"} == init_args, name
