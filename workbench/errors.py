"""The workbench's one exception tree.

    WorkbenchError                 anything the workbench reports to a user
    ├── InputError                 bad input: a file, an id, a value (exit code 2)
    │   ├── NotFoundError          an unknown call, template, submission or run
    │   └── InvalidError           one or more validation problems, each a `Problem`
    ├── SandboxError               the requested isolation level cannot be provided
    ├── ExecutionError             the runner itself failed (not the notebook)
    └── StoreError                 the store refused an operation

A notebook that fails is *not* an exception: it is a run with a status. These
errors are for the cases where the workbench cannot do what it was asked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One validation problem, printed as `path: field: what is wrong`."""

    path: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.field}: {self.message}"


class WorkbenchError(Exception):
    """Base of every error the workbench reports; `exit_code` is the CLI's."""

    exit_code = 1


class InputError(WorkbenchError):
    """The input is wrong; nothing was changed."""

    exit_code = 2


class NotFoundError(InputError):
    """An unknown call, template, submission or run."""


class InvalidError(InputError):
    """Validation found problems; all of them are in `problems`."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, path: str | Path, field: str, message: str) -> InvalidError:
        return cls([Problem(str(path), field, message)])


class SandboxError(WorkbenchError):
    """The isolation level asked for cannot be provided; nothing ran."""

    exit_code = 3


class ExecutionError(WorkbenchError):
    """The runner could not execute a notebook (not a failure of the notebook)."""


class StoreError(WorkbenchError):
    """The store refused an operation, for example rewriting a finished run."""
