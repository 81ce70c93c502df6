"""Albumentations transforms (the ``albu`` extra): OML's factories and registry keys, the image datasets calling
them as OML's do (``transform(image=array)["image"]`` on OpenCV-read RGB arrays), saving them from a config,
and the error naming the extra when albumentations is absent."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from oml_fast.const import MEAN, MEAN_CLIP, STD, STD_CLIP
from oml_fast.errors import MissingExtraError

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # importorskip imports it before our factories do


def _normalised(rgb: np.ndarray, mean=MEAN, std=STD) -> torch.Tensor:
    """``(x / 255 - mean) / std`` of a uint8 ``[H, W, 3]`` array, as ``[3, H, W]``: by hand."""
    x = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)
    return (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def _digit_rgb(i: int = 0) -> np.ndarray:
    from sklearn.datasets import load_digits

    gray = (load_digits().images[i] * 16).clip(0, 255).astype(np.uint8)
    return np.stack([gray] * 3, axis=-1)


def test_factories_normalise_resize_and_pad_white():
    pytest.importorskip("albumentations")
    from oml_fast.transforms.images.albumentations import (
        get_normalisation_albu,
        get_normalisation_resize_albu,
        get_normalisation_resize_albu_clip,
    )

    digit = _digit_rgb()
    out = get_normalisation_albu()(image=digit)["image"]
    assert out.shape == (3, 8, 8) and out.dtype == torch.float32
    assert torch.allclose(out, _normalised(digit), atol=1e-5)

    # 8x4 (half a digit) into 16x16: longer side 8 -> 16, width 4 -> 8, 4 white columns each side
    half = np.ascontiguousarray(digit[:, :4])
    out = get_normalisation_resize_albu(im_size=16)(image=half)["image"]
    white = _normalised(np.full((1, 1, 3), 255, np.uint8))[:, 0, 0]
    assert out.shape == (3, 16, 16)
    assert torch.allclose(out[:, :, :4], white.view(3, 1, 1).expand(3, 16, 4), atol=1e-5)
    assert torch.allclose(out[:, :, 12:], white.view(3, 1, 1).expand(3, 16, 4), atol=1e-5)
    assert not torch.allclose(out[:, :, 4:12], white.view(3, 1, 1).expand(3, 16, 8))

    clip = get_normalisation_resize_albu_clip(im_size=8)(image=digit)["image"]
    assert torch.allclose(clip, _normalised(digit, MEAN_CLIP, STD_CLIP), atol=1e-5)  # 8x8 stays 8x8


def test_registry_keys_build_albumentations_transforms():
    albu = pytest.importorskip("albumentations")
    from oml_fast.registry.transforms import (
        TRANSFORMS_ALBU,
        TRANSFORMS_REGISTRY,
        get_transforms,
        get_transforms_by_cfg,
    )
    from oml_fast.transforms.images.utils import get_im_reader_for_transforms, imread_cv2, imread_pillow

    assert set(TRANSFORMS_ALBU) == {"norm_albu", "norm_resize_albu", "norm_resize_albu_clip"}
    assert set(TRANSFORMS_ALBU) <= set(TRANSFORMS_REGISTRY)
    transforms = get_transforms_by_cfg({"name": "norm_resize_albu", "args": {"im_size": 32}})
    assert isinstance(transforms, albu.Compose)
    assert get_im_reader_for_transforms(transforms) is imread_cv2
    assert get_im_reader_for_transforms(get_transforms("norm_torch")) is imread_pillow


def test_datasets_call_albumentations_transforms_as_oml(digits_root):
    pytest.importorskip("albumentations")
    from oml_fast.datasets import ImageLabeledDataset, ImageQueryGalleryLabeledDataset
    from oml_fast.registry.transforms import get_transforms
    from oml_fast.transforms.images.utils import imread_cv2

    df = pd.read_csv(digits_root / "df.csv").iloc[:6].copy()
    # OpenCV reads what Pillow reads (lossless PNG), so albumentations' normalisation equals ours
    albu_ds = ImageLabeledDataset(df, dataset_root=digits_root, transform=get_transforms("norm_albu"))
    torch_ds = ImageLabeledDataset(df, dataset_root=digits_root, transform=get_transforms("norm_torch"))
    for i in range(len(df)):
        assert torch.allclose(albu_ds[i]["input_tensors"], torch_ds[i]["input_tensors"], atol=1e-5)
    rgb = imread_cv2(str(digits_root / df["path"].iloc[0]))
    assert torch.allclose(albu_ds[0]["input_tensors"], _normalised(rgb), atol=1e-5)

    # boxes crop the array before the transform; x1..y2 are the box
    df["x_1"], df["y_1"], df["x_2"], df["y_2"] = 0, 2, 4, 8
    df["split"], df["is_query"], df["is_gallery"] = "validation", True, True
    qg = ImageQueryGalleryLabeledDataset(
        df, dataset_root=digits_root, transform=get_transforms("norm_resize_albu", im_size=12)
    )
    item = qg[0]
    assert item["input_tensors"].shape == (3, 12, 12)
    assert (item["x1"], item["y1"], item["x2"], item["y2"]) == (0, 2, 4, 8)
    expected = get_transforms("norm_resize_albu", im_size=12)(image=np.ascontiguousarray(rgb[2:8, 0:4]))[
        "image"
    ]
    assert torch.allclose(item["input_tensors"], expected, atol=1e-5)


@pytest.mark.filterwarnings(
    "ignore:Argument\\(s\\) 'padding' are not valid:UserWarning"
)  # albumentations' own load
def test_save_transforms_as_files_writes_albumentations_yaml(tmp_path, monkeypatch):
    albu = pytest.importorskip("albumentations")
    from oml_fast.registry.transforms import save_transforms_as_files

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".hydra").mkdir()
    cfg = {
        "transforms_train": {"name": "norm_resize_albu", "args": {"im_size": 16}},
        "transforms_val": {"name": "norm_torch", "args": {}},
    }
    assert save_transforms_as_files(cfg) == [("transforms_train", ".hydra/transforms_train.yaml")]
    loaded = albu.load(".hydra/transforms_train.yaml", data_format="yaml")
    digit = _digit_rgb(5)
    saved_out = loaded(image=digit)["image"]
    assert torch.allclose(saved_out, get_normalisation_resize(16)(image=digit)["image"])


def get_normalisation_resize(im_size: int):
    from oml_fast.transforms.images.albumentations import get_normalisation_resize_albu

    return get_normalisation_resize_albu(im_size=im_size)


def test_without_albumentations_the_error_names_the_extra(monkeypatch):
    from oml_fast.registry.transforms import get_transforms
    from oml_fast.transforms.images.utils import imread_cv2

    # as if the extra were not installed: importing the module fails as Python does for a missing package
    for name in ("albumentations", "albumentations.pytorch", "cv2"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingExtraError, match=r"pip install 'oml_fast\[albu\]'"):
        get_transforms("norm_albu")
    with pytest.raises(MissingExtraError, match=r"opencv-python-headless.*oml_fast\[albu\]"):
        imread_cv2(b"")


def test_pipeline_config_selects_albumentations_transforms(digits_root, tmp_path):
    """``transforms@transforms_val=norm_resize_albu`` (OML's config group option) builds the validation set."""
    albu = pytest.importorskip("albumentations")
    from oml_fast.pipelines.runs import _datasets, prepare

    cfg = prepare(
        "validate_digits.yaml",
        [
            f"dataset_root={digits_root}",
            "allow_untrained=true",
            "transforms@transforms_val=norm_resize_albu",
            "transforms_val.args.im_size=16",
        ],
        "validate",
    )
    _, valid = _datasets(cfg, with_train=False)
    assert isinstance(valid.transform, albu.Compose)
    assert valid[0]["input_tensors"].shape == (3, 16, 16)
