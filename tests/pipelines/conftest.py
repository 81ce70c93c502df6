"""Fixtures of the pipeline tests."""

from __future__ import annotations

import pytest

from oml_fast.datasets import make_digits_dataset


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory):
    """The built-in digits dataset (PNG files + df.csv), made once per test module."""
    root = tmp_path_factory.mktemp("digits")
    make_digits_dataset(root)
    return root
