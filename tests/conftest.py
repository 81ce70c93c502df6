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


@pytest.fixture
def one_thread():
    """One intra-op thread for the test: for small models on a busy machine, synchronising several threads
    costs more than the work (a ViT-S over 80 images: 33 s on 1 thread, 130 s on 2 shared cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
