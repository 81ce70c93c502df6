"""Weights of the extractors: checkpoints in OML's layouts, the zoo (``from_pretrained``) served from local
folders without network, and the errors that say which file to place where."""

from __future__ import annotations

import pytest
import torch

from oml_fast.models import (
    ConcatSiamese,
    ExtractorWithMLP,
    ResnetExtractor,
    SmallCNNExtractor,
    ViTExtractor,
    WeightsLoadingError,
)
from oml_fast.models.resnet.architecture import BasicBlock, ResNet
from oml_fast.models.vit_dino.architecture import vit_dino
from oml_fast.models.weights import file_digest

TINY_VIT = {"arch": "vit_tiny", "normalise_features": False}


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch, one_thread):
    """Empty cache folders (ours, OML's, torch hub's), no downloads, one thread for the tiny forwards."""
    monkeypatch.setenv("OML_FAST_CACHE", str(tmp_path / "ours"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("OML_FAST_OFFLINE", "1")
    # Small stand-ins registered as architectures (saving, hashing and loading 100 MB files is slow).
    monkeypatch.setitem(ViTExtractor.constructors, "vit_tiny", lambda: vit_dino(16, 32, depth=2, num_heads=2))


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor) -> bool:
    with torch.no_grad():
        return torch.allclose(a.eval()(x), b.eval()(x), atol=1e-6)


def _lightning(state_dict: dict, prefix: str = "model.") -> dict:
    """A Lightning checkpoint of a module that holds the model as ``model`` and a loss with a parameter."""
    return {
        "state_dict": {**{prefix + k: v for k, v in state_dict.items()}, "criterion.weight": torch.ones(3)},
        "epoch": 1,
    }


def test_checkpoint_layouts_round_trip(tmp_path):
    resnet = ResnetExtractor(None, "resnet18", gem_p=3.0, remove_fc=False, normalise_features=False)
    torch.save(_lightning(resnet.state_dict()), tmp_path / "resnet.ckpt")  # keys "model.model.*"
    loaded = ResnetExtractor(
        tmp_path / "resnet.ckpt", "resnet18", gem_p=3.0, remove_fc=False, normalise_features=False
    )
    assert _same_outputs(resnet, loaded, torch.randn(2, 3, 32, 32))
    # remove_fc drops fc's weights from the file and the layer from the model
    assert ResnetExtractor(str(tmp_path / "resnet.ckpt"), "resnet18", 3.0, True, False).feat_dim == 512

    vit = ViTExtractor(None, "vit_tiny", normalise_features=False)
    torch.save(vit.model.state_dict(), tmp_path / "vit.pth")  # the original authors' layout: no prefix
    assert _same_outputs(
        vit, ViTExtractor(tmp_path / "vit.pth", "vit_tiny", False), torch.randn(1, 3, 32, 32)
    )

    mlp = ExtractorWithMLP(SmallCNNExtractor(feat_dim=8, width=4), mlp_features=[6])
    torch.save(_lightning(mlp.state_dict()), tmp_path / "mlp.ckpt")
    loaded_mlp = ExtractorWithMLP(SmallCNNExtractor(feat_dim=8, width=4), [6], weights=tmp_path / "mlp.ckpt")
    assert _same_outputs(mlp, loaded_mlp, torch.randn(2, 3, 8, 8))


def test_weights_that_do_not_fit_are_named(tmp_path):
    torch.save(ViTExtractor(None, "vit_tiny", False).state_dict(), tmp_path / "tiny.pth")
    with pytest.raises(
        WeightsLoadingError, match="(?s)do not fit VisionTransformer.*size mismatch for pos_embed"
    ):
        ViTExtractor(tmp_path / "tiny.pth", "vits16", False)
    with pytest.raises(WeightsLoadingError, match="do not look like a checkpoint of this model.*layer4"):
        ResnetExtractor(tmp_path / "tiny.pth", "resnet18", None, True, False)
    with pytest.raises(
        WeightsLoadingError, match="neither a file nor the name of a pretrained model.*vits16_dino"
    ):
        ViTExtractor("vits16_dinoo", "vits16", False)


def test_from_pretrained_loads_a_file_placed_in_the_cache(tmp_path, monkeypatch):
    vit = ViTExtractor(None, "vit_tiny", normalise_features=True)
    folder = tmp_path / "ours" / "weights"
    folder.mkdir(parents=True)
    torch.save(_lightning(vit.state_dict()), folder / "my_vit.ckpt")
    init_args = {**TINY_VIT, "normalise_features": True}
    record = {"fname": "my_vit.ckpt", "hash": file_digest(folder / "my_vit.ckpt")[:6], "init_args": init_args}
    monkeypatch.setitem(ViTExtractor.pretrained_models, "my_vits16", record)
    loaded = ViTExtractor.from_pretrained("my_vits16")
    assert loaded.normalise_features and _same_outputs(vit, loaded, torch.randn(2, 3, 32, 32))


def test_from_pretrained_finds_omls_and_torch_hubs_downloads(tmp_path, monkeypatch):
    resnet = ResnetExtractor(None, "resnet18", None, False, False)
    hub = tmp_path / "torch" / "hub" / "checkpoints"  # where torchvision keeps resnet18-f37072fd.pth
    hub.mkdir(parents=True)
    torch.save(resnet.model.state_dict(), hub / "resnet18-f37072fd.pth")
    loaded = ResnetExtractor.from_pretrained("resnet18_imagenet1k_v1")
    assert loaded.feat_dim == 512 and loaded.gem_p is None
    resnet.model.fc = torch.nn.Identity()
    assert _same_outputs(resnet, loaded, torch.randn(2, 3, 32, 32))

    oml = tmp_path / "xdg" / "oml" / "torch" / "checkpoints"  # OML's CKPT_SAVE_ROOT
    oml.mkdir(parents=True)
    vit = ViTExtractor(None, "vit_tiny", False)
    torch.save(vit.state_dict(), oml / "from_oml.ckpt")
    record = {"fname": "from_oml.ckpt", "init_args": TINY_VIT}
    monkeypatch.setitem(ViTExtractor.pretrained_models, "from_oml", record)
    assert _same_outputs(vit, ViTExtractor.from_pretrained("from_oml"), torch.randn(1, 3, 32, 32))


def test_missing_checkpoint_names_the_file_the_folder_and_the_address(tmp_path):
    with pytest.raises(WeightsLoadingError) as error:
        ViTExtractor.from_pretrained("vits16_dino")
    message = str(error.value)
    assert (
        "'vits16_dino.ckpt'" in message and str(tmp_path / "ours" / "weights" / "vits16_dino.ckpt") in message
    )
    assert "dl.fbaipublicfiles.com/dino/dino_deitsmall16_pretrain/dino_deitsmall16_pretrain.pth" in message
    assert "OML_FAST_OFFLINE=1" in message
    with pytest.raises(WeightsLoadingError, match="Google Drive, file id 1zuGRHvF2KHd59aw7i7367OH_tQNOGz7A"):
        ViTExtractor.from_pretrained("vits16_sop")
    with pytest.raises(KeyError, match="There is no pretrained model '?vits16_dinoo.*vits16_dino"):
        ViTExtractor.from_pretrained("vits16_dinoo")


def test_failed_download_and_wrong_file_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("OML_FAST_OFFLINE")
    # Port 9 on localhost (discard) refuses connections: a download that fails without network.
    record = {"url": "http://127.0.0.1:9/ckpt/tiny.ckpt", "init_args": TINY_VIT}
    monkeypatch.setitem(ViTExtractor.pretrained_models, "tiny", record)
    with pytest.raises(
        WeightsLoadingError,
        match=r"not available \(cannot download weights from http://127\.0\.0\.1:9.*Place the file 'tiny.ckpt'",
    ):
        ViTExtractor.from_pretrained("tiny")
    folder = tmp_path / "ours" / "weights"
    assert not list(folder.glob("*"))  # nothing partial left behind
    (folder / "vits16_dino.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(
        WeightsLoadingError, match="is not the checkpoint 'vits16_dino': its MD5 is .*'cf0f22'"
    ):
        ViTExtractor.from_pretrained("vits16_dino")


def _small_projector() -> ResNet:
    """A ResNet with one basic block per stage and MoCo's two-layer head (a small resnet50_projector)."""
    model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=8)
    model.fc = torch.nn.Sequential(torch.nn.Linear(512, 16), torch.nn.ReLU(), model.fc)
    return model


def test_moco_checkpoint_in_the_moco_repositorys_layout(tmp_path, monkeypatch):
    monkeypatch.setitem(ResnetExtractor.constructors, "resnet50_projector", _small_projector)
    source = ResnetExtractor(None, "resnet50_projector", gem_p=5.0, remove_fc=False, normalise_features=False)
    assert source.feat_dim == 8
    encoder = source.model.state_dict()
    moco = {f"module.encoder_q.{k}": v for k, v in encoder.items()}
    moco["module.encoder_k.conv1.weight"] = torch.zeros(1)  # the momentum encoder is ignored
    folder = tmp_path / "ours" / "weights"
    folder.mkdir(parents=True)
    path = folder / "moco_v2_800ep_pretrain.pth.tar"
    torch.save({"arch": "resnet50", "epoch": 800, "state_dict": moco}, path)
    record = {**ResnetExtractor.pretrained_models["resnet50_moco_v2"], "hash": file_digest(path)[:8]}
    monkeypatch.setitem(ResnetExtractor.pretrained_models, "resnet50_moco_v2", record)
    loaded = ResnetExtractor.from_pretrained("resnet50_moco_v2")
    assert loaded.feat_dim == 512 and loaded.gem_p == 5.0
    source.model.fc = torch.nn.Identity()
    assert _same_outputs(source, loaded, torch.randn(1, 3, 32, 32))


def test_extractor_with_mlp_from_pretrained_twice(tmp_path, monkeypatch):
    model = ExtractorWithMLP(ViTExtractor(None, "vit_tiny", False), mlp_features=[384], train_backbone=True)
    folder = tmp_path / "ours" / "weights"
    folder.mkdir(parents=True)
    path = folder / "vits16_224_mlp_384_inshop.ckpt"
    torch.save(_lightning(model.state_dict()), path)
    record = dict(ExtractorWithMLP.pretrained_models["vits16_224_mlp_384_inshop"], hash=file_digest(path)[:8])
    record["init_args"] = dict(
        record["init_args"], extractor_creator=lambda: ViTExtractor(None, "vit_tiny", False)
    )
    monkeypatch.setitem(ExtractorWithMLP.pretrained_models, "vits16_224_mlp_384_inshop", record)
    for _ in range(2):  # the record's backbone factory stays in place
        loaded = ExtractorWithMLP.from_pretrained("vits16_224_mlp_384_inshop")
        assert loaded.train_backbone and _same_outputs(model, loaded, torch.randn(1, 3, 32, 32))


def test_concat_siamese_stacks_along_the_height_and_loads_checkpoints(tmp_path):
    extractor = SmallCNNExtractor(feat_dim=8, width=4)
    model = ConcatSiamese(extractor, mlp_hidden_dims=[6], use_tta=True)
    x1, x2 = torch.randn(3, 3, 8, 8), torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        model.eval()
        assert torch.allclose(model(x1, x2), model.head(extractor(torch.cat([x1, x2], dim=2))).view(3))
    torch.save(_lightning(model.state_dict()), tmp_path / "pairwise.ckpt")
    loaded = ConcatSiamese(
        SmallCNNExtractor(feat_dim=8, width=4), [6], use_tta=True, weights=tmp_path / "pairwise.ckpt"
    )
    with torch.no_grad():
        assert torch.allclose(loaded.eval().predict(x1, x2), model.predict(x1, x2))


def test_every_zoo_checkpoint_has_its_transforms():
    from oml_fast.registry import get_transforms_for_pretrained

    zoo = [
        *ViTExtractor.pretrained_models,
        *ResnetExtractor.pretrained_models,
        *ExtractorWithMLP.pretrained_models,
    ]
    for name in zoo:
        transforms, _ = get_transforms_for_pretrained(name)
        assert transforms is not None, name


def _tiny_clip():
    from oml_fast.models.vit_clip.architecture import CLIPVisionTransformer

    return CLIPVisionTransformer(
        input_resolution=32, patch_size=16, width=32, layers=2, heads=2, output_dim=16
    )


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_vit_clip_reads_clip_checkpoints_and_torchscript_archives(tmp_path, monkeypatch):
    from oml_fast.models import ViTCLIPExtractor

    monkeypatch.setitem(ViTCLIPExtractor.constructors, "clip_tiny", _tiny_clip)
    model = ViTCLIPExtractor(None, "clip_tiny", normalise_features=True).eval()
    x = torch.randn(2, 3, 32, 32)
    assert model.feat_dim == 16 and torch.allclose(model(x).norm(dim=1), torch.ones(2))
    with pytest.raises(ValueError, match="resized to 32x32"):
        model(torch.randn(1, 3, 48, 32))
    # a whole CLIP's state dict (image tower under `visual.`, text tower beside it) in a Lightning checkpoint
    full = {f"visual.{k}": v for k, v in model.visual.state_dict().items()}
    full["transformer.resblocks.0.ln_1.weight"] = torch.ones(4)  # the text tower's: ignored
    torch.save(_lightning(full), tmp_path / "clip.ckpt")
    assert _same_outputs(model, ViTCLIPExtractor(str(tmp_path / "clip.ckpt"), "clip_tiny", True), x)
    # OpenAI's archives are TorchScript modules with a `visual` part
    holder = torch.nn.Module()
    holder.visual = model.visual
    folder = tmp_path / "ours" / "weights"
    folder.mkdir(parents=True)
    torch.jit.save(torch.jit.script(holder), str(folder / "tiny_openai.pt"))
    record = {
        "fname": "tiny_openai.pt",
        "is_jitted": True,
        "init_args": {"arch": "clip_tiny", "normalise_features": True},
    }
    monkeypatch.setitem(ViTCLIPExtractor.pretrained_models, "tiny_openai", record)
    assert _same_outputs(model, ViTCLIPExtractor.from_pretrained("tiny_openai"), x)


def _tiny_unicom(using_checkpoint: bool = True):
    from oml_fast.models.vit_unicom.architecture import UnicomVisionTransformer

    return UnicomVisionTransformer(32, 16, 32, 8, depth=2, num_heads=2, using_checkpoint=using_checkpoint)


@pytest.mark.slow  # the first torch.utils.checkpoint call of a process takes ~7 s (it imports torch._dynamo)
def test_vit_unicom_gradient_checkpointing_trains():
    from oml_fast.models.vit_unicom.architecture import UnicomVisionTransformer

    torch.manual_seed(0)
    plain = _tiny_unicom(using_checkpoint=False).train()
    recomputed = UnicomVisionTransformer(32, 16, 32, 8, depth=2, num_heads=2, using_checkpoint=True).train()
    recomputed.load_state_dict(plain.state_dict())
    x = torch.randn(3, 3, 32, 32)
    for model in (plain, recomputed):
        torch.manual_seed(1)  # the same stochastic-depth draws
        model(x).square().sum().backward()
    for a, b in zip(plain.parameters(), recomputed.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5)


def test_vit_unicom_round_trip_and_sha256_check(tmp_path, monkeypatch):
    from oml_fast.models import ViTUnicomExtractor

    tiny = _tiny_unicom
    monkeypatch.setitem(ViTUnicomExtractor.constructors, "tiny_unicom", tiny)
    model = ViTUnicomExtractor(None, "tiny_unicom", normalise_features=True)
    x = torch.randn(3, 3, 32, 32)
    folder = tmp_path / "ours" / "weights"
    folder.mkdir(parents=True)
    torch.save(
        {k: v.half() if v.is_floating_point() else v for k, v in model.model.state_dict().items()},
        folder / "u.pt",
    )
    record = {
        "fname": "u.pt",
        "sha256": file_digest(folder / "u.pt", "sha256"),
        "init_args": {"arch": "tiny_unicom", "normalise_features": True},
    }
    monkeypatch.setitem(ViTUnicomExtractor.pretrained_models, "tiny_unicom", record)
    loaded = ViTUnicomExtractor.from_pretrained("tiny_unicom")  # the float16 file, as DeepGlint's
    assert loaded.feat_dim == 8
    model.model.load_state_dict(
        {k: v.half().float() if v.is_floating_point() else v for k, v in model.model.state_dict().items()}
    )
    assert _same_outputs(model, loaded, x)
    (folder / "u.pt").write_bytes(b"damaged")
    with pytest.raises(WeightsLoadingError, match="its SHA256 is"):
        ViTUnicomExtractor.from_pretrained("tiny_unicom")
