"""YAML documents (calls, submissions) read into pydantic models.

Every failure becomes a list of `Problem`s naming the file and the field, so that
`workbench validate` can report all of them at once.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from workbench.errors import InvalidError, NotFoundError, Problem

M = TypeVar("M", bound=BaseModel)

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]*$"


class Document(BaseModel):
    """Base of the YAML-backed models: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ALIAS_REFUSED = "aliases (*name) are not accepted: write the value out"


@functools.cache
def _loader() -> Any:
    """PyYAML's safe loader, refusing aliases.

    Anchors and aliases let a few hundred bytes expand to gigabytes (a "billion laughs"):
    no document the workbench reads needs them, so the first alias is an error.
    """
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(None, None, ALIAS_REFUSED, event.start_mark)
            return super().compose_node(parent, index)

    return NoAliasLoader


def read_yaml(path: Path) -> Any:
    """Parse one YAML file; a syntax error becomes a one-line problem with its position."""
    import yaml

    if not path.is_file():
        raise NotFoundError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidError.single(path, "-", f"cannot read file: {exc}") from exc
    try:
        return yaml.load(text, Loader=_loader())  # a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidError.single(path, "-", f"invalid YAML: {where}{problem}") from exc


def problems_from_pydantic(path: Path, exc: PydanticValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "-"
        problems.append(Problem(str(path), field, error["msg"]))
    return problems


def load_document(path: Path, model: type[M], context: dict[str, Any] | None = None) -> M:
    """Read `path` and validate it as `model`, raising `InvalidError` with every problem."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise InvalidError.single(path, "-", "expected a mapping at the top level")
    try:
        return model.model_validate(data, context=context)
    except PydanticValidationError as exc:
        raise InvalidError(problems_from_pydantic(path, exc)) from exc
