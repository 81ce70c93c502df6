"""Keep-aspect resizing (``oml_fast.utils.images.images_resize``, OML's module): hand-computed cases, round
trips, real digits, and OpenCV's ``INTER_CUBIC`` (what OML uses) where OpenCV is installed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from oml_fast.errors import InvalidInputError
from oml_fast.utils.images.images_resize import (
    get_image_hw,
    get_karesize_param,
    inverse_karesize_bboxes,
    inverse_karesize_image,
    karesize_bboxes,
    karesize_image,
    resize_ndarray,
    resize_tensor,
)


def _digit(i: int = 0) -> np.ndarray:
    """An 8x8 scikit-learn digit as uint8 0..255."""
    return (load_digits().images[i] * 16).clip(0, 255).astype(np.uint8)


def test_karesize_params_by_hand():
    # 100x200 into 50x50: scale 1/4, 25x50, 25 rows of padding split 12 top / 13 bottom
    assert get_karesize_param((100, 200), (50, 50)) == (0.25, (25, 50), [0, 0, 12, 13])
    # 3x2 into 9x9: scale 3, 9x6, 3 columns of padding split 1 left / 2 right
    assert get_karesize_param((3, 2), (9, 9)) == (3.0, (9, 6), [1, 2, 0, 0])
    assert get_image_hw(np.zeros((3, 4, 5))) == (3, 4)
    assert get_image_hw(torch.zeros(2, 3, 4, 5)) == (4, 5)


def test_karesize_array_pads_around_a_same_size_resize():
    # 2x4 into 4x4: scale 1, no resampling, one zero row above and one below
    image = np.full((2, 4, 3), 200, dtype=np.uint8)
    out = karesize_image(image, (4, 4))
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    assert (out[[0, 3]] == 0).all() and (out[1:3] == 200).all()
    assert karesize_image(image, (2, 4)) is image  # same size: untouched


def test_karesize_tensor_upscales_a_constant_image_and_pads_left_right():
    # 2x2 of 7 into 4x8: scale 2 -> 4x4, two zero columns each side; clamping keeps 7 exact
    image = torch.full((3, 2, 2), 7.0)
    out = karesize_image(image, (4, 8))
    assert out.shape == (3, 4, 8)
    expected = torch.zeros(3, 4, 8)
    expected[:, :, 2:6] = 7.0
    assert torch.equal(out, expected)
    batched = karesize_image(image[None].repeat(2, 1, 1, 1), (4, 8))
    assert torch.equal(batched, expected[None].repeat(2, 1, 1, 1))


def test_inverse_karesize_restores_size_and_content():
    digit = _digit()
    padded = karesize_image(digit, (16, 24))  # scale 2: 16x16, 4 columns of padding each side
    assert padded.shape == (16, 24) and (padded[:, :4] == 0).all() and (padded[:, 20:] == 0).all()
    back = inverse_karesize_image(padded, (8, 8))
    assert back.shape == (8, 8) and back.dtype == np.uint8
    assert np.abs(back.astype(int) - digit).mean() < 12  # bicubic up and down: close, not exact

    tensor = torch.from_numpy(digit).float()[None]
    t_back = inverse_karesize_image(karesize_image(tensor, (16, 24)), (8, 8))
    assert t_back.shape == (1, 8, 8)
    assert (t_back - tensor).abs().mean() < 12


@pytest.mark.parametrize("as_tensor", [False, True])
def test_bboxes_by_hand_and_round_trip(as_tensor):
    boxes = np.array([[0.0, 0.0, 200.0, 100.0], [20.0, 40.0, 60.0, 80.0]])
    boxes = torch.tensor(boxes) if as_tensor else boxes
    # 100x200 into 50x50: x / 4, y / 4 + 12
    resized = karesize_bboxes(boxes, (100, 200), (50, 50))
    assert np.allclose(np.asarray(resized), [[0, 12, 50, 37], [5, 22, 15, 32]])
    back = inverse_karesize_bboxes(resized, (50, 50), (100, 200))
    assert type(back) is type(boxes) and np.allclose(np.asarray(back), np.asarray(boxes))


def test_resize_tensor_keeps_dtype_range_and_gradients():
    ramp = torch.arange(16.0).reshape(4, 4).requires_grad_()
    out = resize_tensor(ramp, (7, 7))  # align_corners: the corners are kept exactly
    assert out.shape == (7, 7) and out[0, 0] == 0 and out[-1, -1] == 15
    assert out.min() >= 0 and out.max() <= 15
    out.sum().backward()
    assert ramp.grad is not None and torch.isclose(ramp.grad.sum(), torch.tensor(49.0))

    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[:, 2:] = True
    resized_mask = resize_tensor(mask, (4, 8))
    assert resized_mask.dtype == torch.bool
    assert not resized_mask[:, :3].any() and resized_mask[:, 5:].all()

    as_int = resize_tensor(torch.full((2, 2), 5, dtype=torch.int64), (3, 3))
    assert as_int.dtype == torch.int64 and (as_int == 5).all()


def test_resize_ndarray_keeps_dtype_and_channels():
    digit = _digit(3)
    for image in (digit, digit[..., None], np.stack([digit] * 3, -1)):
        out = resize_ndarray(image, (5, 11))
        assert out.shape == (5, 11, *image.shape[2:]) and out.dtype == np.uint8
    assert resize_ndarray(digit.astype(np.float32), (5, 11)).dtype == np.float32
    mask = resize_ndarray(digit > 100, (16, 16))
    assert mask.dtype == bool and mask.any() and not mask.all()


def test_resize_ndarray_matches_opencv_inter_cubic():
    cv2 = pytest.importorskip("cv2")  # the `albu` extra brings it; OML resizes arrays with it
    digits = load_digits().images[:3]
    for image, new_hw in (
        ((digits[0] * 16).astype(np.uint8), (13, 5)),
        ((np.stack(list(digits), -1) * 16).astype(np.uint8), (20, 30)),
        ((digits[1] * 16).astype(np.float32), (6, 3)),
    ):
        ours = resize_ndarray(image, new_hw)
        theirs = cv2.resize(image, (new_hw[1], new_hw[0]), interpolation=cv2.INTER_CUBIC)
        if image.dtype == np.uint8:
            assert np.array_equal(ours, theirs)
        else:
            assert np.allclose(ours, theirs, atol=1e-3)


def test_bad_input_names_the_argument():
    with pytest.raises(TypeError, match="image"):
        karesize_image([[0, 1]], (2, 2))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="src_bboxes"):
        karesize_bboxes(np.zeros((2, 3)), (4, 4), (8, 8))
    with pytest.raises(InvalidInputError, match="new_hw"):
        get_karesize_param((4, 4), (0, 8))
    with pytest.raises(InvalidInputError, match="tensor"):
        resize_tensor(torch.zeros(1, 1, 1, 2, 2), (3, 3))
