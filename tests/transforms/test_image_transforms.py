"""Image transforms against OML 4.0: the transforms of every zoo checkpoint (``get_transforms_for_pretrained``),
step by step and on real non-square images, the torchvision semantics of our Pillow ops, the albumentations
twin (keep-aspect resize, white padding) and the image readers."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from oml_fast.const import MEAN, MEAN_CLIP, PAD_COLOR, STD, STD_CLIP
from oml_fast.registry.transforms import TRANSFORMS_FOR_PRETRAINED, get_transforms_for_pretrained
from oml_fast.transforms.images.ops import (
    CenterCrop,
    LongestMaxSize,
    Normalize,
    PadIfNeeded,
    RandomResizedCrop,
    Resize,
    ToTensor,
)
from oml_fast.transforms.images.pil import get_normalisation_resize_pad
from oml_fast.transforms.images.utils import imread_pillow

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

# What OML 4.0's `oml/registry/transforms.py` builds for each name, in our words:
#   ("hypvit", resize, crop, mean, std): shorter side to `resize` (bicubic), central `crop`, normalise
#   ("square", size, mean, std): resize to size x size (bilinear), normalise
#   ("pad", size, mean, std): albumentations' longest side to size, white padding to size x size, normalise
IMAGENET, CLIP = (MEAN, STD), (MEAN_CLIP, STD_CLIP)
OML_PRETRAINED = {
    **{
        name: ("hypvit", 256, 224, *IMAGENET)
        for name in (
            "resnet50_moco_v2",
            "resnet18_imagenet1k_v1",
            "resnet34_imagenet1k_v1",
            "resnet50_imagenet1k_v1",
            "resnet101_imagenet1k_v1",
            "resnet152_imagenet1k_v1",
            "vits16_224_mlp_384_inshop",
        )
    },
    **{
        name: ("square", 224, *IMAGENET)
        for name in ("vitb8_dino", "vitb16_dino", "vits8_dino", "vits16_dino")
    },
    **{
        f"{arch}_dinov2": ("hypvit", 224, 224, *IMAGENET)
        for arch in ("vitb14", "vitb14_reg", "vitl14", "vitl14_reg", "vits14", "vits14_reg")
    },
    **{
        f"{source}_{arch}": ("pad", 224, *CLIP)
        for source in ("sber", "openai")
        for arch in ("vitb32_224", "vitb16_224", "vitl14_224")
    },
    "vits16_inshop": ("hypvit", 224, 224, *IMAGENET),
    "vits16_sop": ("hypvit", 224, 224, *IMAGENET),
    "vits16_cars": ("pad", 224, *IMAGENET),
    "vits16_cub": ("pad", 224, *IMAGENET),
    # Unicom's own `transform(im_size)`: bicubic shorter side, central crop, RGB, CLIP's normalisation
    "vitb32_unicom": ("hypvit", 224, 224, *CLIP),
    "vitb16_unicom": ("hypvit", 224, 224, *CLIP),
    "vitl14_unicom": ("hypvit", 224, 224, *CLIP),
    "vitl14_336px_unicom": ("hypvit", 336, 336, *CLIP),
}


def _steps(transforms) -> list[tuple]:
    """The steps of one of our ``Compose`` as comparable tuples."""
    described = []
    for step in transforms.transforms:
        if isinstance(step, Resize):
            described.append(("Resize", step.size, step.interpolation))
        elif isinstance(step, CenterCrop):
            described.append(("CenterCrop", step.size))
        elif isinstance(step, LongestMaxSize):
            described.append(("LongestMaxSize", step.max_size))
        elif isinstance(step, PadIfNeeded):
            described.append(("PadIfNeeded", step.min_height, step.min_width, step.fill))
        elif isinstance(step, ToTensor):
            described.append(("ToTensor",))
        elif isinstance(step, Normalize):
            described.append(("Normalize", step.mean, step.std))
        else:
            raise AssertionError(f"unexpected step {step!r}")
    return described


def _expected_steps(spec: tuple) -> list[tuple]:
    kind, *sizes, mean, std = spec
    if kind == "hypvit":
        head = [("Resize", sizes[0], "bicubic"), ("CenterCrop", (sizes[1], sizes[1]))]
    elif kind == "square":
        head = [("Resize", (sizes[0], sizes[0]), "bilinear")]
    else:
        head = [("LongestMaxSize", sizes[0]), ("PadIfNeeded", sizes[0], sizes[0], PAD_COLOR)]
    return [*head, ("ToTensor",), ("Normalize", tuple(mean), tuple(std))]


def _photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth RGB picture with some texture (not a flat colour, so that resampling shows)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    smooth = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256], axis=-1)
    noise = rng.integers(0, 40, (height, width, 3))
    return Image.fromarray(np.clip(smooth + noise, 0, 255).astype(np.uint8))


def _normalised_colour(colour, mean, std) -> torch.Tensor:
    return (torch.tensor(colour, dtype=torch.float32) / 255 - torch.tensor(mean)) / torch.tensor(std)


def test_every_oml_checkpoint_gets_omls_transforms_step_by_step():
    assert set(TRANSFORMS_FOR_PRETRAINED) == set(OML_PRETRAINED)
    for name, spec in OML_PRETRAINED.items():
        transforms, imread = get_transforms_for_pretrained(name)
        assert _steps(transforms) == _expected_steps(spec), name
        assert imread is imread_pillow, name


def test_get_transforms_for_pretrained_returns_omls_tuple_of_the_registered_object():
    result = get_transforms_for_pretrained("vits16_cars")
    assert isinstance(result, tuple) and len(result) == 2
    assert result[0] is TRANSFORMS_FOR_PRETRAINED["vits16_cars"]  # OML's dict holds ready objects too
    assert get_transforms_for_pretrained("vits16_cars")[0] is result[0]
    with pytest.raises(KeyError, match="vits16_cars"):
        get_transforms_for_pretrained("vits16_carz")


@pytest.mark.parametrize("name", ["vits16_cars", "openai_vitb16_224"])
@pytest.mark.parametrize("size", [(300, 200), (120, 333)])
def test_keep_aspect_checkpoints_pad_a_non_square_image_with_white(name, size):
    width, height = size
    transforms, imread = get_transforms_for_pretrained(name)
    _, _, mean, std = OML_PRETRAINED[name]
    out = transforms(_photo(width, height))
    assert out.shape == (3, 224, 224) and out.dtype == torch.float32
    # albumentations' sizes: longer side 224, the other round(side * 224 / longer); padding centred,
    # the odd pixel after the image
    scale = 224 / max(width, height)
    new_w, new_h = round(width * scale), round(height * scale)
    left, top = (224 - new_w) // 2, (224 - new_h) // 2
    white = _normalised_colour(PAD_COLOR, mean, std).view(3, 1, 1)
    is_white = torch.isclose(out, white, atol=1e-5).all(dim=0)
    content = torch.zeros(224, 224, dtype=torch.bool)
    content[top : top + new_h, left : left + new_w] = True
    assert is_white[~content].all()
    assert not is_white[content].all()
    assert max(new_w, new_h) == 224
    # the content is the image resized with its aspect kept: compare with a direct resize
    expected = LongestMaxSize(224)(_photo(width, height))
    got = out[:, content].view(3, new_h, new_w) * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(
        3, 1, 1
    )
    assert torch.allclose(got * 255, torch.from_numpy(expected).permute(2, 0, 1).float(), atol=1e-3)


def test_keep_aspect_twin_equals_omls_albumentations_transforms():
    pytest.importorskip("albumentations")
    pytest.importorskip("cv2")
    from oml_fast.transforms.images.albumentations import get_normalisation_resize_albu

    for width, height in [(300, 200), (120, 333), (50, 80), (1000, 640), (224, 224)]:
        photo = _photo(width, height, seed=width)
        for mean, std in (IMAGENET, CLIP):
            ours = get_normalisation_resize_pad(224, mean=mean, std=std)(photo)
            theirs = get_normalisation_resize_albu(224, mean=mean, std=std)(image=np.asarray(photo))["image"]
            assert ours.shape == theirs.shape == (3, 224, 224)
            # OpenCV's INTER_LINEAR rounds in fixed point: at most one level of 255 apart
            assert (ours - theirs).abs().max() <= 1 / 255 / min(std) + 1e-5, (width, height)
            assert torch.isclose(ours, theirs, atol=1e-5).float().mean() > 0.8


def test_hypvit_checkpoints_resize_the_shorter_side_and_crop_the_centre():
    photo = _photo(300, 200)
    transforms, _ = get_transforms_for_pretrained("resnet50_imagenet1k_v1")
    out = transforms(photo)
    assert out.shape == (3, 224, 224)
    # by hand with Pillow, as torchvision does on PIL images: 300x200 -> 384x256 (bicubic), crop 224 centred
    resized = photo.resize((384, 256), Image.Resampling.BICUBIC)
    left, top = round((384 - 224) / 2), round((256 - 224) / 2)
    crop = np.asarray(resized.crop((left, top, left + 224, top + 224)), dtype=np.float32) / 255
    expected = (torch.from_numpy(crop).permute(2, 0, 1) - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(
        STD
    ).view(3, 1, 1)
    assert torch.allclose(out, expected, atol=1e-6)


def test_unicom_transforms_take_grayscale_images_as_rgb():
    transforms, _ = get_transforms_for_pretrained("vitl14_336px_unicom")
    out = transforms(_photo(500, 400).convert("L"))
    assert out.shape == (3, 336, 336)
    assert torch.allclose(out[0] * STD_CLIP[0] + MEAN_CLIP[0], out[1] * STD_CLIP[1] + MEAN_CLIP[1], atol=1e-5)


def test_resize_is_pillows_plain_resize_as_torchvision_on_pil_images():
    photo = _photo(2000, 1500)  # a large downscale, where a `reducing_gap` pre-shrink would change pixels
    for size, interpolation, resample in [
        ((224, 224), "bilinear", Image.Resampling.BILINEAR),
        (224, "bicubic", Image.Resampling.BICUBIC),
    ]:
        ours = Resize(size, interpolation=interpolation)(photo)
        target = (224, 224) if isinstance(size, tuple) else (int(224 * 2000 / 1500), 224)
        assert np.array_equal(np.asarray(ours), np.asarray(photo.resize(target, resample)))


def test_center_crop_larger_than_the_image_pads_black_as_torchvision():
    image = Image.new("RGB", (5, 4), (255, 255, 255))
    out = np.asarray(CenterCrop(8)(image))[:, :, 0]
    # torchvision pads (8-5)//2 = 1 left, 2 right, (8-4)//2 = 2 above, 2 below
    expected = np.zeros((8, 8), np.uint8)
    expected[2:6, 1:6] = 255
    assert np.array_equal(out, expected)


def test_random_resized_crop_is_crop_then_resize():
    photo = _photo(90, 60)
    crop = RandomResizedCrop(32, scale=(0.2, 1.0))
    torch.manual_seed(3)
    out = crop(photo)
    torch.manual_seed(3)
    box = crop._box(90, 60)
    assert np.array_equal(
        np.asarray(out), np.asarray(photo.crop(box).resize((32, 32), Image.Resampling.BILINEAR))
    )


def test_longest_max_size_and_pad_take_arrays_and_images_alike():
    photo = _photo(30, 20)
    from_image = PadIfNeeded(32, 32, fill=PAD_COLOR)(LongestMaxSize(32)(photo))
    from_array = PadIfNeeded(32, 32, fill=PAD_COLOR)(LongestMaxSize(32)(np.asarray(photo)))
    assert from_image.shape == (32, 32, 3) and np.array_equal(from_image, from_array)
    assert (from_image[:5] == 255).all() and (from_image[-6:] == 255).all()  # 21 rows: 5 above, 6 below
    with pytest.raises(ValueError, match="uint8"):
        LongestMaxSize(8)(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="max_size"):
        LongestMaxSize(0)


def test_imread_cv2_reads_as_oml_stored_orientation_alpha_and_gray(tmp_path):
    pytest.importorskip("cv2")
    from oml_fast.transforms.images.utils import imread_cv2

    photo = _photo(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90": OML's readers (OpenCV unchanged, Pillow) both ignore it
    photo.save(tmp_path / "rotated.jpg", exif=exif)
    assert imread_cv2(tmp_path / "rotated.jpg").shape == (20, 40, 3)
    assert imread_pillow(tmp_path / "rotated.jpg").size == (40, 20)

    photo.save(tmp_path / "photo.png")
    assert np.array_equal(
        imread_cv2(tmp_path / "photo.png"), np.asarray(imread_pillow(tmp_path / "photo.png"))
    )
    assert np.array_equal(imread_cv2((tmp_path / "photo.png").read_bytes()), np.asarray(photo))
    rgba = photo.convert("RGBA")
    rgba.putalpha(7)
    rgba.save(tmp_path / "alpha.png")
    assert np.array_equal(imread_cv2(str(tmp_path / "alpha.png")), np.asarray(photo))
    photo.convert("L").save(tmp_path / "gray.png")
    gray = imread_cv2(tmp_path / "gray.png")
    assert gray.shape == (20, 40, 3) and np.array_equal(gray[..., 0], np.asarray(photo.convert("L")))


def test_augs_torch_draw_random_numbers_as_torchvision():
    """Flip: one ``torch.rand(1)``; ``ColorJitter()``: one ``torch.randperm(4)`` (torchvision draws it even
    when no adjustment is active); so seeded runs flip the same images as OML's torchvision transforms."""
    from oml_fast.transforms.images.torchvision import get_augs_torch

    photo = _photo(20, 10)
    augs = get_augs_torch(im_size=8, mean=(0.0,) * 3, std=(1.0,) * 3)
    torch.manual_seed(5)
    outs = [augs(photo) for _ in range(6)]
    torch.manual_seed(5)
    plain = ToTensor()(Resize((8, 8))(photo))
    for out in outs:
        flip = float(torch.rand(1)) < 0.5
        torch.randperm(4)
        assert torch.allclose(out, plain.flip(-1) if flip else plain)


def test_omls_module_level_names_of_the_transforms_exist():
    from oml_fast.transforms.images import albumentations, torchvision, utils

    assert albumentations.TTransformsList.__origin__ is list
    for module, names in {
        torchvision: [
            "get_augs_torch",
            "get_normalisation_torch",
            "get_normalisation_resize_torch",
            "get_augs_hypvit",
            "get_normalisation_resize_hypvit",
        ],
        albumentations: [
            "get_normalisation_albu",
            "get_normalisation_resize_albu",
            "get_normalisation_resize_albu_clip",
        ],
        utils: ["TTransforms", "get_im_reader_for_transforms"],
    }.items():
        assert set(names) <= set(module.__all__), module.__name__


def _torchvision_crop_box(width: int, height: int, scale, ratio) -> tuple[int, int, int, int]:
    """torchvision's ``RandomResizedCrop.get_params`` (its draws, in its order), as ``(left, top, right, bottom)``."""
    import math

    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1]).item()
        aspect_ratio = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1])).item()
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            i = torch.randint(0, height - h + 1, size=(1,)).item()
            j = torch.randint(0, width - w + 1, size=(1,)).item()
            return j, i, j + w, i + h
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    i, j = (height - h) // 2, (width - w) // 2
    return j, i, j + w, i + h


@pytest.mark.parametrize("size", [(90, 60), (13, 200), (224, 224)])
def test_random_resized_crop_draws_torchvisions_boxes(size):
    crop = RandomResizedCrop(32, scale=(0.2, 1.0))
    for seed in range(50):
        torch.manual_seed(seed)
        ours = crop._box(*size)
        torch.manual_seed(seed)
        assert ours == _torchvision_crop_box(*size, crop.scale, crop.ratio), seed
