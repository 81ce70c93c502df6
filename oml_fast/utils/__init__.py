"""OML's ``oml.utils``: the mock images dataset (laid out locally from scikit-learn's digits, no download),
and, in its submodules, the helpers OML documents and uses in its examples:

- ``oml_fast.utils.download_mock_dataset``: ``get_mock_images_dataset``, ``download_mock_dataset``;
- ``oml_fast.utils.dataframe_format``: ``check_retrieval_dataframe_format``;
- ``oml_fast.utils.misc``: ``set_global_seed``, ``flatten_dict``, ``compare_dicts_recursively``, ...;
- ``oml_fast.utils.misc_torch``: ``PCA``, ``take_2d``, ``assign_2d``, ``unique_by_ids``, ...

Importing this package needs only the core install; pandas, Pillow and scikit-learn are imported when
the mock dataset is asked for.
"""

from oml_fast.utils.download_mock_dataset import download_mock_dataset, get_mock_images_dataset

__all__ = ["get_mock_images_dataset", "download_mock_dataset"]
