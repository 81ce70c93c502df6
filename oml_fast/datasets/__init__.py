"""oml_fast.datasets: OML's dataframe format, its validator, image / text / audio datasets and the digits data.

``InMemoryQueryGalleryDataset`` and ``PairDataset`` need only the core install. The dataframe and image
datasets need the ``pipeline`` extra (pandas, pillow): they are imported on first use, and a missing
extra raises :class:`~oml_fast.errors.MissingExtraError` naming it.
"""

from typing import TYPE_CHECKING

from oml_fast.datasets.in_memory import InMemoryQueryGalleryDataset
from oml_fast.datasets.pairs import PairDataset
from oml_fast.errors import lazy_attributes

if TYPE_CHECKING:
    from oml_fast.datasets.audios import (
        AudioBaseDataset,
        AudioLabeledDataset,
        AudioQueryGalleryDataset,
        AudioQueryGalleryLabeledDataset,
        AudioReadError,
        get_retrieval_audios_datasets,
        get_validation_audios_dataset,
        read_audio,
    )
    from oml_fast.datasets.dataframe import (
        DataFrameFormatError,
        check_retrieval_dataframe_format,
        find_dataframe_problems,
    )
    from oml_fast.datasets.df_datasets import (
        DFLabeledDataset,
        DFQueryGalleryDataset,
        DFQueryGalleryLabeledDataset,
    )
    from oml_fast.datasets.digits import make_digits_dataset
    from oml_fast.datasets.images import (
        ImageBaseDataset,
        ImageLabeledDataset,
        ImageQueryGalleryDataset,
        ImageQueryGalleryLabeledDataset,
        ImageReadError,
        get_retrieval_images_datasets,
        get_validation_images_dataset,
        read_image,
    )
    from oml_fast.datasets.texts import (
        TextBaseDataset,
        TextLabeledDataset,
        TextQueryGalleryDataset,
        TextQueryGalleryLabeledDataset,
        get_retrieval_texts_datasets,
        get_validation_texts_dataset,
        load_tokenizer,
    )
    from oml_fast.transforms.images.pil import ImageAugmentation, ImageNormalisation

_WHERE = {
    **dict.fromkeys(
        [
            "AudioBaseDataset",
            "AudioLabeledDataset",
            "AudioQueryGalleryDataset",
            "AudioQueryGalleryLabeledDataset",
            "AudioReadError",
            "get_retrieval_audios_datasets",
            "get_validation_audios_dataset",
            "read_audio",
        ],
        "audios",
    ),
    **dict.fromkeys(
        ["DFLabeledDataset", "DFQueryGalleryDataset", "DFQueryGalleryLabeledDataset"], "df_datasets"
    ),
    **dict.fromkeys(
        [
            "TextBaseDataset",
            "TextLabeledDataset",
            "TextQueryGalleryDataset",
            "TextQueryGalleryLabeledDataset",
            "get_retrieval_texts_datasets",
            "get_validation_texts_dataset",
            "load_tokenizer",
        ],
        "texts",
    ),
    **dict.fromkeys(
        ["DataFrameFormatError", "check_retrieval_dataframe_format", "find_dataframe_problems"], "dataframe"
    ),
    "make_digits_dataset": "digits",
    **dict.fromkeys(
        [
            "ImageBaseDataset",
            "ImageLabeledDataset",
            "ImageQueryGalleryDataset",
            "ImageQueryGalleryLabeledDataset",
            "ImageReadError",
            "get_retrieval_images_datasets",
            "get_validation_images_dataset",
            "read_image",
        ],
        "images",
    ),
}
_lazy = lazy_attributes(__name__, _WHERE)


def __getattr__(name: str) -> object:
    if name in ("ImageAugmentation", "ImageNormalisation"):
        from oml_fast.transforms.images import pil

        return getattr(pil, name)
    return _lazy(name)


__all__ = [
    "AudioBaseDataset",
    "AudioLabeledDataset",
    "AudioQueryGalleryDataset",
    "AudioQueryGalleryLabeledDataset",
    "AudioReadError",
    "DFLabeledDataset",
    "DFQueryGalleryDataset",
    "DFQueryGalleryLabeledDataset",
    "TextBaseDataset",
    "TextLabeledDataset",
    "TextQueryGalleryDataset",
    "TextQueryGalleryLabeledDataset",
    "read_audio",
    "get_retrieval_audios_datasets",
    "get_validation_audios_dataset",
    "get_retrieval_texts_datasets",
    "get_validation_texts_dataset",
    "load_tokenizer",
    "DataFrameFormatError",
    "ImageAugmentation",
    "ImageBaseDataset",
    "ImageLabeledDataset",
    "ImageNormalisation",
    "ImageQueryGalleryDataset",
    "ImageQueryGalleryLabeledDataset",
    "PairDataset",
    "ImageReadError",
    "InMemoryQueryGalleryDataset",
    "check_retrieval_dataframe_format",
    "find_dataframe_problems",
    "get_retrieval_images_datasets",
    "get_validation_images_dataset",
    "make_digits_dataset",
    "read_image",
]
