"""Shared fixtures and markers: seeded RNG per test, CUDA tests skipped without a GPU."""

from __future__ import annotations

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_cuda = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip_cuda)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def digits_root(tmp_path_factory):
    """The built-in digits dataset written once per session in OML's format: ``root/df.csv`` + ``root/images``."""
    from oml_fast.datasets.digits import make_digits_dataset

    root = tmp_path_factory.mktemp("digits")
    make_digits_dataset(root)
    return root
