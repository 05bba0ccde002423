"""Workbench: run, measure and judge AI experiments submitted to public funding calls.

The public API is small and loaded lazily, so that `import workbench` inside a
notebook kernel (for `workbench.record`) costs next to nothing.
"""

from __future__ import annotations

# Only public names are bound here (the imports live inside `__getattr__`), so that a test
# can hold `__all__` to what the module really offers.
__version__ = "0.1.0"

_EXPORTS = {
    "record": "workbench.recording",
    "load_call": "workbench.calls",
    "load_submission": "workbench.submissions",
    "validate_submission": "workbench.submissions",
    "execute_submission": "workbench.runner.execute",
    "run_submission": "workbench.batch",
    "run_batch": "workbench.batch",
    "reproduce": "workbench.reproduction",
    "open_store": "workbench.store",
    "ResultRow": "workbench.results",
    "Workspace": "workbench.workspace",
    "WorkbenchError": "workbench.errors",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
