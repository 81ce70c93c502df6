"""OML's ``oml.utils``: the mock images, texts and audio datasets (made locally, no download), and, in its
submodules, the helpers OML documents and uses in its examples:

- ``oml_fast.utils.download_mock_dataset``: ``get_mock_images_dataset``, ``download_mock_dataset``,
  ``get_mock_texts_dataset``, ``get_mock_audios_dataset`` (files written with ``soundfile``, extra ``audio``);
- ``oml_fast.utils.audios``: ``default_spec_repr_func``, ``visualize_audio``, ``visualize_audio_with_player``;
- ``oml_fast.utils.dataframe_format``: ``check_retrieval_dataframe_format``;
- ``oml_fast.utils.misc``: ``set_global_seed``, ``flatten_dict``, ``compare_dicts_recursively``, ...;
- ``oml_fast.utils.misc_torch``: ``PCA``, ``take_2d``, ``assign_2d``, ``unique_by_ids``, ...;
- ``oml_fast.utils.io``: file hashes and the download helpers (``download_checkpoint``, ...);
  ``oml_fast.utils.remote_storage``: files and folders of OML's file server;
- ``oml_fast.utils.images``: image readers and drawing (``images``), keep-aspect resizing (``images_resize``).

Importing this package needs only the core install; pandas, Pillow and scikit-learn are imported when
the mock dataset is asked for.
"""

from oml_fast.utils.download_mock_dataset import (
    download_mock_dataset,
    get_mock_audios_dataset,
    get_mock_images_dataset,
    get_mock_texts_dataset,
)

__all__ = [
    "get_mock_images_dataset",
    "get_mock_texts_dataset",
    "get_mock_audios_dataset",
    "download_mock_dataset",
]
