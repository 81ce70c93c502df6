"""oml_fast.utils.images.images and oml_fast.utils.io: OML's picture helpers and file hashes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oml_fast.const import PAD_COLOR
from oml_fast.utils.images.images import (
    draw_bbox,
    figure_to_nparray,
    imread_pillow,
    square_pad,
    tensor_to_numpy_image,
)
from oml_fast.utils.io import calc_folder_hash, calc_hash, check_exists_and_validate_md5


def test_tensor_to_picture_spans_0_255():
    picture = tensor_to_numpy_image(torch.randn(3, 5, 7))
    assert picture.shape == (5, 7, 3) and picture.dtype == np.uint8
    assert picture.min() == 0 and picture.max() == 255
    with pytest.raises(ValueError, match=r"\[C, H, W\]"):
        tensor_to_numpy_image(torch.zeros(5, 7))


def test_box_frame_is_drawn_around_the_box_only():
    image = np.zeros((60, 80, 3), dtype=np.uint8)
    framed = draw_bbox(image, (20, 10, 50, 40), color=(255, 0, 0))
    assert (image == 0).all()  # a copy
    assert (framed[10, 20:51] == (255, 0, 0)).all() and (framed[40, 20:51] == (255, 0, 0)).all()
    assert (framed[25, 35] == 0).all() and (framed[55, 5] == 0).all()  # inside and outside untouched
    whole = draw_bbox(image, None, color=(0, 255, 0))
    assert (whole[0, :, 1] == 255).all() and (whole[:, 0, 1] == 255).all()


def test_square_pad_centres_the_image():
    image = np.zeros((4, 10, 3), dtype=np.uint8)
    padded = square_pad(image)
    assert padded.shape == (10, 10, 3)
    assert (padded[3:7] == 0).all() and (padded[:3] == PAD_COLOR).all() and (padded[7:] == PAD_COLOR).all()


def test_figure_to_array():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(2, 1), dpi=50)
    assert figure_to_nparray(figure).shape == (50, 100, 3)


def test_hashes(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"oml")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.png").write_bytes(b"\x89PNG")
    assert calc_hash(tmp_path / "a.txt") == calc_hash(b"oml") == calc_hash(str(tmp_path / "a.txt"))
    folder = calc_folder_hash(tmp_path)
    assert check_exists_and_validate_md5(tmp_path, folder) and check_exists_and_validate_md5(tmp_path)
    (tmp_path / "a.txt").rename(tmp_path / "c.txt")  # same content, another name
    assert calc_folder_hash(tmp_path) != folder
    assert not check_exists_and_validate_md5(tmp_path / "missing")
    assert imread_pillow(_png_bytes()).size == (2, 1)


def _png_bytes() -> bytes:
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (2, 1)).save(buffer, format="PNG")
    return buffer.getvalue()
