"""Notebooks: reading them safely, their `parameters` cell and their workbench metadata."""

from __future__ import annotations

import ast
import keyword
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import InvalidError, Problem

if TYPE_CHECKING:
    from nbformat import NotebookNode

PHASES = ("data", "train", "inference", "baseline", "evaluate")
UNTAGGED = "untagged"
# Every phase a cell, and so its energy, can be counted in, in the order pages show them.
ALL_PHASES = (*PHASES, UNTAGGED)


def read_notebook(path: Path) -> NotebookNode:
    """Read and validate a notebook; anything else is a one-line `InvalidError`."""
    import nbformat

    if not path.is_file():
        raise InvalidError.single(path, "-", "notebook file not found")
    try:
        nb = nbformat.read(path, as_version=4)
    except (ValueError, UnicodeDecodeError) as exc:
        # nbformat raises NotJSONError (a ValueError) for files that are not JSON; its
        # message quotes the file, which is never echoed.
        raise InvalidError.single(path, "-", "not a valid notebook (not JSON)") from exc
    except Exception as exc:  # nbformat's reader raises several unrelated types
        reason = type(exc).__name__
        raise InvalidError.single(path, "-", f"not a valid notebook ({reason})") from exc
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        raise InvalidError.single(path, "-", f"not a valid notebook: {exc.message}") from exc
    return nb


def cell_phases(cell: Any) -> tuple[str, ...]:
    """The phases a cell belongs to, from its tags, in tag order (`(UNTAGGED,)` when none).

    A cell tagged with several phases (e.g. `train` and `inference`) counts in each: the
    runner splits the energy it uses evenly between them.
    """
    tags = cell.get("metadata", {}).get("tags", [])
    phases = tuple(dict.fromkeys(t for t in tags if t in PHASES))
    return phases or (UNTAGGED,)


def cell_phase(cell: Any) -> str:
    """The first phase a cell belongs to (see `cell_phases` for all of them)."""
    return cell_phases(cell)[0]


@dataclass(frozen=True)
class Parameter:
    """One entry of a notebook's `parameters` cell, as papermill reads it."""

    name: str
    default_source: str
    annotation: str | None
    help: str

    @property
    def default(self) -> Any:
        """The default value when it is a literal, else the source text."""
        try:
            return ast.literal_eval(self.default_source)
        except (ValueError, SyntaxError):
            return self.default_source

    @property
    def kind(self) -> str | None:
        """The expected Python type name: the annotation, else the default's type."""
        if self.annotation:
            return self.annotation
        try:
            value = ast.literal_eval(self.default_source)
        except (ValueError, SyntaxError):
            return None
        return type(value).__name__


def has_parameters_cell(nb: NotebookNode) -> bool:
    return any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells)


def has_phase_tags(nb: NotebookNode) -> bool:
    """Whether any code cell carries a phase tag (else a run's AI energy cannot be known)."""
    return any(cell_phase(c) != UNTAGGED for c in nb.cells if c.cell_type == "code")


NO_PHASE_TAGS = (
    "no cell carries a phase tag (data, train, inference, baseline, evaluate): "
    "the run's AI and baseline energy cannot be known"
)


def notebook_parameters(path: Path, *, required: bool = True) -> dict[str, Parameter]:
    """The notebook's parameters, read with papermill's inspection.

    A notebook without a `parameters` cell has none: an error when `required`, else `{}`.
    """
    from papermill.inspection import inspect_notebook

    nb = read_notebook(path)
    if not has_parameters_cell(nb):
        if not required:
            return {}
        raise InvalidError.single(
            path, "parameters", "the notebook has no cell tagged 'parameters'"
        )
    found = inspect_notebook(str(path))
    return {
        name: Parameter(
            name=name,
            default_source=p["default"],
            annotation=None if p["inferred_type_name"] == "None" else p["inferred_type_name"],
            help=p["help"],
        )
        for name, p in found.items()
    }


_COMPATIBLE: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
    "tuple": (list, tuple),
}


def _accepts(kind: str | None, value: Any) -> bool:
    if kind in (None, "NoneType") or value is None:
        return True  # no default type to honour: papermill injects any literal
    base = kind.split("[")[0].replace("Optional", "").strip()
    allowed = _COMPATIBLE.get(base)
    if allowed is None:
        return True
    if isinstance(value, bool) and bool not in allowed:
        return False
    return isinstance(value, allowed)


def check_parameters(
    notebook: Path, values: dict[str, Any], where: str, field: str = "parameters"
) -> list[Problem]:
    """Problems with `values` as parameters of `notebook`: names, existence and types."""
    problems: list[Problem] = []
    for name in values:
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            problems.append(Problem(where, f"{field}.{name!r}", "not a plain Python identifier"))
    if problems:
        return problems
    try:
        # A team's own notebook may have no `parameters` cell: it then runs as it is,
        # with papermill's semantics, and takes no parameters.
        declared = notebook_parameters(notebook, required=False)
    except InvalidError as exc:
        return exc.problems
    if values and not declared:
        names = ", ".join(values)
        return [
            Problem(
                where,
                field,
                f"the notebook has no cell tagged 'parameters', so it takes none (given: {names})",
            )
        ]
    for name, value in values.items():
        param = declared.get(name)
        if param is None:
            known = ", ".join(declared) or "none"
            problems.append(
                Problem(where, f"{field}.{name}", f"not in the notebook's parameters ({known})")
            )
        elif not _accepts(param.kind, value):
            problems.append(
                Problem(
                    where,
                    f"{field}.{name}",
                    f"expected {param.kind} (default {param.default_source}), "
                    f"got {type(value).__name__} {value!r}",
                )
            )
    return problems


def workbench_metadata(nb: NotebookNode) -> dict[str, Any]:
    """The notebook's `metadata.workbench` block (title, use case, metrics, data schema)."""
    meta = nb.metadata.get("workbench", {})
    return dict(meta) if isinstance(meta, dict) else {}
