"""The workspace: one folder holding calls, submissions, templates, runs and the store."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.documents import SLUG_PATTERN
from workbench.errors import NotFoundError

if TYPE_CHECKING:
    from workbench.calls import Call

DB_ENV = "WORKBENCH_DB"
HOME_ENV = "WORKBENCH_HOME"


@dataclass(frozen=True)
class Workspace:
    root: Path
    db: str | None = None

    @classmethod
    def from_env(cls, root: str | Path | None = None, db: str | None = None) -> Workspace:
        """The workspace at `root`, else `$WORKBENCH_HOME`, else the current folder."""
        base = Path(root or os.environ.get(HOME_ENV) or Path.cwd()).resolve()
        return cls(base, db or os.environ.get(DB_ENV))

    @property
    def calls_dir(self) -> Path:
        return self.root / "calls"

    @property
    def submissions_dir(self) -> Path:
        return self.root / "submissions"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates" / "notebooks"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def db_url(self) -> str:
        return self.db or f"sqlite:///{self.root / 'workbench.db'}"

    @cached_property
    def _calls(self) -> dict[str, Call]:
        return {}

    def call(self, call_id: str) -> Call:
        from workbench.calls import call_path, load_call

        if call_id not in self._calls:
            self._calls[call_id] = load_call(call_path(self.calls_dir, call_id))
        return self._calls[call_id]

    def call_ids(self) -> list[str]:
        return sorted(p.stem for p in self.calls_dir.glob("*.yaml"))

    def template_path(self, template: str) -> Path:
        if not re.match(SLUG_PATTERN, template):
            raise NotFoundError(f"{template!r} is not a valid template id")
        path = self.templates_dir / f"{template}.ipynb"
        if not path.is_file():
            known = ", ".join(self.template_ids()) or "none"
            raise NotFoundError(f"{path}: unknown template {template!r} (known: {known})")
        return path

    def template_ids(self) -> list[str]:
        return sorted(p.stem for p in self.templates_dir.glob("*.ipynb"))

    def submission_dirs(self, call_id: str | None = None) -> list[Path]:
        pattern = f"{call_id}/*/submission.yaml" if call_id else "*/*/submission.yaml"
        return sorted(p.parent for p in self.submissions_dir.glob(pattern))

    def submission_dir(self, ref: str | Path) -> Path:
        """A submission folder from a path, or from a `CALL/ID` reference."""
        path = Path(ref)
        if not path.is_absolute() and not path.exists():
            path = self.submissions_dir / path
        if not (path / "submission.yaml").is_file():
            raise NotFoundError(f"{ref}: not a submission folder (no submission.yaml)")
        return path.resolve()
