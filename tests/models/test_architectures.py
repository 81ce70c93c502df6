"""ResNet and ViT extractors built with random weights: OML's signatures, shapes, feat_dim, normalisation,
torchvision-sized parameter counts, pooling, multi-scale, and the checks of bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oml_fast.interfaces.models import IExtractor, IFreezable
from oml_fast.models import ExtractorWithMLP, ResnetExtractor, SmallCNNExtractor, ViTExtractor
from oml_fast.models.resnet.pooling import GEM
from oml_fast.models.vit_dino.architecture import vit_dino, vit_dinov2
from oml_fast.registry import get_extractor, get_extractor_by_cfg

pytestmark = pytest.mark.usefixtures("one_thread")


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet18_shapes_feat_dim_and_normalisation():
    model = ResnetExtractor(None, "resnet18", gem_p=None, remove_fc=True, normalise_features=True).eval()
    out = model(torch.randn(2, 3, 32, 32))
    assert isinstance(model, IExtractor) and model.feat_dim == 512 and out.shape == (2, 512)
    assert torch.allclose(out.norm(dim=1), torch.ones(2))
    assert torch.equal(model.extract(torch.zeros(1, 3, 32, 32)), model(torch.zeros(1, 3, 32, 32)))
    with_fc = ResnetExtractor(None, "resnet18", gem_p=None, remove_fc=False, normalise_features=False).eval()
    assert with_fc.feat_dim == 1000 and with_fc(torch.randn(1, 3, 32, 32)).shape == (1, 1000)
    assert _n_params(with_fc) == 11_689_512  # torchvision's resnet18


def test_resnet50_and_moco_projector_sizes():
    resnet50 = ResnetExtractor(None, "resnet50", gem_p=None, remove_fc=False, normalise_features=False)
    assert _n_params(resnet50) == 25_557_032 and resnet50.feat_dim == 1000  # torchvision's resnet50
    projector = ResnetExtractor(
        None, "resnet50_projector", gem_p=5.0, remove_fc=False, normalise_features=False
    )
    assert projector.feat_dim == 128 and isinstance(projector.model.avgpool, GEM)
    assert ResnetExtractor(None, "resnet50_projector", None, True, False).feat_dim == 2048


def test_gem_between_average_and_max_pooling():
    x = torch.rand(2, 4, 5, 5) + 0.1
    assert torch.allclose(GEM(p=1.0)(x), x.mean(dim=(2, 3)), atol=1e-6)
    high = GEM(p=50.0)(x)
    assert torch.all(high <= x.amax(dim=(2, 3)) + 1e-5) and torch.all(high >= x.mean(dim=(2, 3)))


def test_vit_dino_shapes_any_size_and_multi_scale():
    model = ViTExtractor(None, "vits16", normalise_features=True).eval()
    assert model.feat_dim == 384 and _n_params(model) == 21_665_664  # DINO's ViT-S/16
    with torch.no_grad():
        for shape in [(2, 3, 32, 32), (1, 3, 48, 80)]:  # position embeddings interpolated to the grid
            out = model(torch.randn(*shape))
            assert out.shape == (shape[0], 384) and torch.allclose(out.norm(dim=1), torch.ones(shape[0]))
        x = torch.randn(2, 3, 64, 64)
        multi = ViTExtractor(None, "vits16", normalise_features=False, use_multi_scale=True).eval()
        multi.load_state_dict(model.state_dict())
        expected = sum(
            model.model(torch.nn.functional.interpolate(x, scale_factor=s, mode="bilinear"))
            if s != 1
            else model.model(x)
            for s in (1.0, 2**-0.5, 0.5)
        )
        assert torch.allclose(multi(x), expected / 3, atol=1e-5)


def test_vit_dinov2_registers_and_patch_multiples():
    model = ViTExtractor(None, "vits14_reg", normalise_features=False).eval()
    assert model.feat_dim == 384 and model.model.register_tokens.shape == (1, 4, 384)
    assert {"blocks.0.ls1.gamma", "mask_token"} <= set(model.model.state_dict())
    with torch.no_grad():
        assert model(torch.randn(2, 3, 28, 42)).shape == (2, 384)
    with pytest.raises(ValueError, match="multiples of the patch size 14"):
        model(torch.randn(1, 3, 30, 28))


@pytest.mark.parametrize("registers", [False, True])
def test_small_vits_take_other_sizes(registers):
    v1, v2 = vit_dino(8, 32, depth=2, num_heads=2), vit_dinov2(48, depth=2, num_heads=3, registers=registers)
    assert v1(torch.randn(3, 3, 24, 40)).shape == (3, 32)
    assert v2(torch.randn(3, 3, 42, 14)).shape == (3, 48)


def test_bad_arguments_name_them():
    with pytest.raises(ValueError, match="`arch` must be one of .*'resnet18'"):
        ResnetExtractor(None, "resnet19", None, True, False)
    with pytest.raises(ValueError, match="`arch` must be one of .*'vits16'"):
        ViTExtractor(None, "vit_small_patch16_224", False)
    with pytest.raises(ValueError, match="FloatTensor"):
        ResnetExtractor(None, "resnet18", None, True, False)(torch.randn(3, 32, 32))


def test_extractor_with_mlp_freezes_the_backbone():
    backbone = SmallCNNExtractor(feat_dim=8, width=4, normalise_features=False)
    model = ExtractorWithMLP(backbone, mlp_features=[16, 4])
    assert isinstance(model, IFreezable) and model.feat_dim == 4 and not model.train_backbone
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    assert all(p.grad is None for p in backbone.parameters())
    model.unfreeze()
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    assert all(p.grad is not None for p in backbone.parameters())


def test_registry_builds_them_with_omls_keys():
    resnet = get_extractor(
        "resnet", weights=None, arch="resnet18", gem_p=2.0, remove_fc=True, normalise_features=False
    )
    assert isinstance(resnet, ResnetExtractor) and resnet.feat_dim == 512
    cfg = {
        "name": "extractor_with_mlp",
        "args": {
            "extractor": {
                "name": "vit",
                "args": {"weights": None, "arch": "vits16", "normalise_features": False},
            },
            "mlp_features": [24],
        },
    }
    model = get_extractor_by_cfg(cfg)
    assert isinstance(model.extractor, ViTExtractor) and model.feat_dim == 24


def _digit_image(size: int = 48) -> np.ndarray:
    """A real picture: the first sklearn digit, upscaled to ``size`` px, grey as RGB uint8."""
    from sklearn.datasets import load_digits

    digit = load_digits().images[0] / 16.0
    pixels = np.kron(digit, np.ones((size // 8, size // 8)))
    return np.uint8(255 * np.stack([pixels] * 3, axis=-1))


def test_attention_weights_are_the_attention_forward_uses():
    attention = vit_dino(8, 32, depth=1, num_heads=4).blocks[0].attn
    x = torch.randn(2, 7, 32)
    weights = attention.attention_weights(x)
    assert torch.allclose(weights.sum(dim=-1), torch.ones(2, 4, 7), atol=1e-6)
    v = attention.qkv(x).reshape(2, 7, 3, 4, 8)[:, :, 2].transpose(1, 2)
    assert torch.allclose(
        attention.proj((weights @ v).transpose(1, 2).reshape(2, 7, 32)), attention(x), atol=1e-5
    )


def test_draw_attention_on_a_digit():
    pil = pytest.importorskip("PIL.Image")
    image = _digit_image()
    vit = ViTExtractor(None, "vits16", normalise_features=False).train()
    picture = vit.draw_attention(image[:45, :40])  # sides that are not multiples of the patch
    assert picture.shape == (45, 40, 3) and picture.dtype == np.uint8 and vit.training
    assert isinstance(vit.draw_attention(pil.fromarray(image)), pil.Image)
    with pytest.raises(ValueError, match=r"RGB image \[H, W, 3\]"):
        vit.draw_attention(image[..., 0])


def test_draw_gradcam_on_a_digit():
    image = _digit_image()
    resnet = ResnetExtractor(None, "resnet18", gem_p=None, remove_fc=False, normalise_features=False)
    picture = resnet.draw_gradcam(image)
    assert picture.shape == image.shape and picture.dtype == np.uint8 and picture.max() == 255
    assert all(p.grad is None for p in resnet.parameters())  # no gradients left on the model
    resnet.remove_fc = True
    with pytest.raises(ValueError, match="remove_fc=False"):
        resnet.draw_gradcam(image)


def test_shipped_extractor_configs_take_the_constructors_arguments():
    """oml_fast/configs/extractor/*.yaml (OML's options) bind to the classes' signatures (nothing is built)."""
    import inspect
    from pathlib import Path

    omegaconf = pytest.importorskip("omegaconf")
    from oml_fast.registry import EXTRACTORS_REGISTRY

    folder = Path(__file__).resolve().parents[2] / "oml_fast" / "configs" / "extractor"
    blocks = [
        omegaconf.OmegaConf.to_container(omegaconf.OmegaConf.load(path))
        for path in sorted(folder.glob("*.yaml"))
    ]
    assert {"resnet", "vit", "vit_clip", "extractor_with_mlp"} <= {block["name"] for block in blocks}
    while blocks:
        block = blocks.pop()
        args = dict(block["args"])
        if isinstance(args.get("extractor"), dict):
            blocks.append(args.pop("extractor"))
            args["extractor"] = None
        inspect.signature(EXTRACTORS_REGISTRY[block["name"]]).bind(**args)
