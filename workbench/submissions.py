"""Submissions: a team's answer to a call, one folder each, and their validation."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import EmailStr, Field, field_validator

from workbench.calls import CUSTOM_TEMPLATE, Call
from workbench.documents import SLUG_PATTERN, Document, load_document
from workbench.errors import InputError, InvalidError, NotFoundError, Problem
from workbench.vocabulary import State

if TYPE_CHECKING:
    from workbench.workspace import Workspace

Slug = Annotated[str, Field(pattern=SLUG_PATTERN, max_length=64)]
SUBMISSION_FILE = "submission.yaml"
NOTEBOOK_FILE = "notebook.ipynb"

# What a team hands in is bounded before it is read in full, run or stored. `validate`,
# `run`, `batch` and the bundle receiver (which validates what it receives) share these.
MAX_SUBMISSION_BYTES = 1024**2  # submission.yaml
MAX_ANSWER_CHARS = 20_000  # one questionnaire answer (about 3,000 words)
MAX_NOTEBOOK_BYTES = 20 * 1024**2
MAX_NOTEBOOK_CELLS = 2_000


class DataFile(Document):
    """A data file the team declares, pinned by its sha256."""

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("path")
    @classmethod
    def _inside_submission(cls, value: str) -> str:
        pure = PurePosixPath(value)
        if pure.is_absolute() or ".." in pure.parts or not value.strip():
            raise ValueError("must be a relative path inside the submission folder")
        return value


class Submission(Document):
    id: Slug
    call: Slug
    team: str = Field(min_length=1)
    organisation: str = Field(min_length=1)
    contact: EmailStr | None = None
    title: str = Field(min_length=1)
    template: Slug
    notebook: str = NOTEBOOK_FILE
    parameters: dict[str, Any] = Field(default_factory=dict)
    data: list[DataFile] = Field(default_factory=list)
    answers: dict[str, Any] = Field(default_factory=dict)
    # Older workspaces only: read once as the dossier's initial state, then the store's audit
    # log alone holds it (a folder without it is a draft until received or decided).
    state: State | None = None

    @field_validator("state")
    @classmethod
    def _initial_state(cls, value: State | None) -> State | None:
        if value not in (None, "draft", "submitted"):
            raise ValueError(
                "only draft or submitted can be declared; later states come from the store's "
                "audit log (workbench decide)"
            )
        return value

    @field_validator("notebook")
    @classmethod
    def _notebook_name(cls, value: str) -> str:
        if "/" in value or "\\" in value or value.startswith(".") or not value.endswith(".ipynb"):
            raise ValueError("must be the file name of an .ipynb in the submission folder")
        return value

    @property
    def key(self) -> str:
        return f"{self.call}/{self.id}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_submission(folder: Path) -> Submission:
    """Load `folder/submission.yaml`; its id and call must match the folder it lives in."""
    path = folder / SUBMISSION_FILE
    issue = _file_problem(folder, SUBMISSION_FILE, MAX_SUBMISSION_BYTES)
    if issue:
        raise InvalidError.single(path, "-", issue)
    sub = load_document(path, Submission)
    problems = []
    if sub.id != folder.name:
        problems.append(Problem(str(path), "id", f"{sub.id!r} does not match the folder name"))
    if sub.call != folder.parent.name:
        problems.append(
            Problem(
                str(path), "call", f"{sub.call!r} does not match the folder {folder.parent.name!r}"
            )
        )
    if problems:
        raise InvalidError(problems)
    return sub


def _file_problem(folder: Path, name: str, max_bytes: int) -> str | None:
    """Why `folder/name` cannot be read as a team's file: outside the folder, missing, too big.

    A link is followed only when it stays inside the submission folder, as for data files.
    """
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        return f"{name}: leaves the submission folder"
    if not path.is_file():
        return None if not path.exists() else f"{name}: not a regular file"
    size = path.stat().st_size
    if size > max_bytes:
        return f"{name}: {size} bytes, more than the limit of {max_bytes}"
    return None


def _notebook_problems(folder: Path, name: str, where: str) -> list[Problem]:
    """The notebook's own limits, checked before papermill reads it."""
    from workbench.notebooks import read_notebook

    issue = _file_problem(folder, name, MAX_NOTEBOOK_BYTES)
    if issue:
        return [Problem(where, "notebook", issue)]
    if not (folder / name).is_file():
        return []  # reported by the parameters' check, as before
    try:
        cells = len(read_notebook(folder / name).cells)
    except InvalidError as exc:
        return exc.problems
    if cells > MAX_NOTEBOOK_CELLS:
        return [
            Problem(
                where,
                "notebook",
                f"{name}: {cells} cells, more than the limit of {MAX_NOTEBOOK_CELLS}",
            )
        ]
    return []


def _answer_size(value: Any) -> int:
    import json

    return len(value) if isinstance(value, str) else len(json.dumps(value, default=str))


def check_submission(
    folder: Path, sub: Submission, call: Call, *, answers: bool = True
) -> list[Problem]:
    """Every problem with a loaded submission against its call; empty when it is valid.

    With `answers=False` an unanswered questionnaire is no problem: answers are needed to
    hand a dossier in, not to run it (`submission_notes` says what is still missing).
    """
    from workbench.notebooks import check_parameters

    where = str(folder / SUBMISSION_FILE)
    problems: list[Problem] = []
    if not call.accepts_template(sub.template):
        accepted = ", ".join(call.templates)
        problems.append(
            Problem(
                where,
                "template",
                f"{sub.template!r} is not accepted by call {call.id!r} ({accepted})",
            )
        )
    notebook = folder / sub.notebook
    notebook_problems = _notebook_problems(folder, sub.notebook, where)
    problems += notebook_problems or check_parameters(notebook, sub.parameters, where)
    for i, item in enumerate(sub.data):
        path = folder / item.path
        if not path.resolve().is_relative_to(folder.resolve()):
            problems.append(Problem(where, f"data.{i}.path", "leaves the submission folder"))
        elif not path.is_file():
            problems.append(Problem(where, f"data.{i}.path", f"{item.path}: file not found"))
        elif sha256_file(path) != item.sha256:
            problems.append(
                Problem(
                    where, f"data.{i}.sha256", f"{item.path}: content does not match its sha256"
                )
            )
    too_long = {
        name for name, value in sub.answers.items() if _answer_size(value) > MAX_ANSWER_CHARS
    }
    for name in sorted(too_long):
        size = _answer_size(sub.answers[name])
        message = f"{size} characters, more than the limit of {MAX_ANSWER_CHARS}"
        problems.append(Problem(where, f"answers.{name}", message))
    for question in call.questionnaire:
        if question.id in too_long:
            continue
        issue = question.check_answer(sub.answers.get(question.id))
        if issue and (answers or sub.answers.get(question.id) is not None):
            problems.append(Problem(where, f"answers.{question.id}", issue))
    for answer in sub.answers:
        if call.question(answer) is None:
            problems.append(Problem(where, f"answers.{answer}", "no such question in the call"))
    return problems


def submission_notes(folder: Path, sub: Submission, call: Call) -> list[str]:
    """What a valid submission still lacks, one line each: not errors, but worth saying."""
    from workbench.notebooks import NO_PHASE_TAGS, has_phase_tags, read_notebook

    notes = []
    unanswered = [q.id for q in call.questionnaire if q.required and sub.answers.get(q.id) is None]
    if unanswered:
        notes.append(
            f"{folder / SUBMISSION_FILE}: questionnaire not answered yet ({', '.join(unanswered)}):"
            " needed to hand the dossier in, not to run it"
        )
    if not has_phase_tags(read_notebook(folder / sub.notebook)):
        notes.append(f"{folder / sub.notebook}: {NO_PHASE_TAGS}")
    return notes


def validate_submission(
    folder: Path, workspace: Workspace, *, answers: bool = True
) -> tuple[Submission, Call]:
    """Load and fully check one submission; raise `InvalidError` with every problem."""
    sub = load_submission(folder)
    try:
        call = workspace.call(sub.call)
    except NotFoundError as exc:
        raise InvalidError.single(folder / SUBMISSION_FILE, "call", str(exc)) from exc
    problems = check_submission(folder, sub, call, answers=answers)
    # The notebook's imports against the call's environment: one subprocess per check.
    from workbench import environments

    root = environments.default_root(workspace.root)
    problems += environments.check_imports(
        folder, folder / sub.notebook, call, workspace.calls_dir, root
    )
    if problems:
        raise InvalidError(problems)
    return sub, call


def _answers_block(call: Call) -> str:
    """The questionnaire as YAML: every question unanswered, its type and text in a comment."""
    import json

    lines = ["answers:" if call.questionnaire else "answers: {}"]
    for q in call.questionnaire:
        kind = {"yes_no": "true/false", "text": "text"}.get(q.type) or " | ".join(q.choices)
        optional = ", optional" if not q.required else ""
        # json.dumps quotes ids the way YAML reads them back.
        lines.append(f"  {json.dumps(q.id)}: null  # ({kind}{optional}) {q.text.fr} / {q.text.en}")
    return "\n".join(lines) + "\n"


def new_submission(
    workspace: Workspace,
    call_id: str,
    template: str,
    submission_id: str,
    team: str,
    organisation: str | None = None,
    title: str | None = None,
    notebook: Path | None = None,
) -> Path:
    """Create `submissions/CALL/ID/`, its `submission.yaml` with the notebook's defaults.

    The notebook is the template's, or with the `custom` template the team's own
    (`notebook`), taken as it is: its `parameters` cell, if it has one, gives the defaults.
    """
    import shutil

    import yaml

    from workbench.notebooks import notebook_parameters, read_notebook

    call = workspace.call(call_id)
    if not re.match(SLUG_PATTERN, submission_id):
        raise InputError(f"{submission_id!r}: submission ids are slugs ([a-z0-9][a-z0-9-]*)")
    if not call.accepts_template(template):
        raise InputError(f"template {template!r} is not accepted by call {call_id!r}")
    if template == CUSTOM_TEMPLATE:
        if notebook is None:
            raise InputError("--template custom needs the team's notebook: --notebook PATH")
        read_notebook(notebook)  # a file that is not a notebook is refused before anything
        source = notebook
    elif notebook is not None:
        raise InputError(f"--notebook is for --template custom; {template!r} brings its own")
    else:
        source = workspace.template_path(template)
    folder = workspace.submissions_dir / call_id / submission_id
    if folder.exists():
        raise InputError(f"{folder}: already exists")
    defaults = {name: p.default for name, p in notebook_parameters(source, required=False).items()}
    doc: dict[str, Any] = {
        "id": submission_id,
        "call": call_id,
        "team": team,
        "organisation": organisation or team,
        "contact": None,
        "title": title or f"{team}: {template}",
        "template": template,
        "notebook": NOTEBOOK_FILE,
        "parameters": defaults,
        "data": [],
    }
    folder.mkdir(parents=True)
    shutil.copyfile(source, folder / NOTEBOOK_FILE)
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True) + _answers_block(call)
    (folder / SUBMISSION_FILE).write_text(text, encoding="utf-8")
    return folder
