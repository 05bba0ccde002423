"""The public API: `workbench.__all__` is complete and every name resolves."""

from __future__ import annotations

import pytest

import workbench


def test_every_public_name_resolves() -> None:
    for name in workbench.__all__:
        assert getattr(workbench, name) is not None, name


def test_public_api_is_what_the_docs_promise() -> None:
    assert {"record", "load_call", "load_submission", "run_submission", "open_store"} <= set(
        workbench.__all__
    )


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="nothing_here"):
        workbench.nothing_here  # noqa: B018
