"""Image transforms (OML's ``oml.transforms``): the torchvision-style factories, on Pillow + torch."""

from oml_fast.transforms.images.pil import ImageAugmentation, ImageNormalisation, get_normalisation_resize_pad
from oml_fast.transforms.images.torchvision import (
    get_augs_hypvit,
    get_augs_torch,
    get_normalisation_resize_hypvit,
    get_normalisation_resize_torch,
    get_normalisation_torch,
)
from oml_fast.transforms.images.utils import TTransforms, get_im_reader_for_transforms, imread_pillow

__all__ = [
    "ImageAugmentation",
    "ImageNormalisation",
    "TTransforms",
    "get_augs_hypvit",
    "get_augs_torch",
    "get_im_reader_for_transforms",
    "get_normalisation_resize_hypvit",
    "get_normalisation_resize_pad",
    "get_normalisation_resize_torch",
    "get_normalisation_torch",
    "imread_pillow",
]
