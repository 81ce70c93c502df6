"""oml_fast.errors: the error classes OML users' except clauses meet, and the missing-extra messages."""

from __future__ import annotations

import pytest

from oml_fast import errors
from oml_fast.errors import InvalidInputError, MissingExtraError, lazy_attributes, require_extra


def test_invalid_input_is_value_and_assertion_error():
    for clause in (ValueError, AssertionError):
        with pytest.raises(clause):
            raise InvalidInputError("bad")


def test_missing_extra_names_the_extra(monkeypatch):
    monkeypatch.setitem(errors.EXTRA_OF_MODULE, "oml_fast_absent_extra_module", "pipeline")
    with pytest.raises(
        MissingExtraError, match=r"MyFeature needs `oml_fast_absent_extra_module`.*oml_fast\[pipeline\]"
    ):
        require_extra("oml_fast_absent_extra_module.sub", "MyFeature")
    with pytest.raises(
        ImportError
    ):  # MissingExtraError is an ImportError: `except ImportError` keeps working
        require_extra("oml_fast_absent_extra_module")


def test_a_missing_module_of_ours_is_not_called_an_extra():
    with pytest.raises(ModuleNotFoundError) as info:
        require_extra("oml_fast.no_such_module")
    assert not isinstance(info.value, MissingExtraError)


def test_lazy_attributes():
    getter = lazy_attributes("oml_fast.functional", {"batched_knn": "knn"})
    from oml_fast.functional.knn import batched_knn

    assert getter("batched_knn") is batched_knn
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        getter("nothing")
