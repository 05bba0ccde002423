"""The public API: `workbench.__all__` is what the package offers, and every name resolves."""

from __future__ import annotations
import __future__

import subprocess
import sys
import types

import pytest

import workbench


def public_names(module: types.ModuleType) -> set[str]:
    """Public names bound in `module`, whether defined there or imported into it.

    Submodules (bound as attributes once imported anywhere) and `from __future__` features
    are not part of an API.
    """
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType | __future__._Feature)
    }


def unlisted(module: types.ModuleType) -> set[str]:
    return public_names(module) - set(module.__all__)


def test_every_public_name_of_the_package_is_in_all() -> None:
    assert unlisted(workbench) == set()


def test_a_public_name_added_without_listing_it_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workbench, "helper", lambda: None, raising=False)
    assert unlisted(workbench) == {"helper"}


def test_every_name_in_all_resolves_to_the_object_its_module_defines() -> None:
    for name in workbench.__all__:
        value = getattr(workbench, name)
        assert value is not None, name
        if callable(value):
            # Re-exported, not redefined: the object comes from a submodule of the package.
            assert value.__module__.startswith("workbench."), (name, value.__module__)
            assert getattr(sys.modules[value.__module__], name) is value, name


def test_all_has_no_duplicates_and_dir_lists_it() -> None:
    assert len(workbench.__all__) == len(set(workbench.__all__))
    assert set(workbench.__all__) <= set(dir(workbench))


def test_the_names_the_docs_promise_are_public() -> None:
    assert {"record", "load_call", "load_submission", "run_submission", "open_store"} <= set(
        workbench.__all__
    )


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="nothing_here"):
        workbench.nothing_here  # noqa: B018


def test_importing_the_package_loads_none_of_its_api() -> None:
    """`import workbench` in a kernel costs nothing: the API loads on first use."""
    code = (
        "import sys, workbench; print(sorted(m for m in sys.modules if m.startswith('workbench.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
