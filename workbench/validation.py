"""Validation of a workspace's calls and submissions, reporting every problem at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from workbench.errors import InputError, InvalidError, Problem
from workbench.workspace import Workspace


@dataclass
class ValidationReport:
    checked: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth saying, not problems

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_call(path: Path, report: ValidationReport) -> None:
    from workbench.calls import load_call
    from workbench.environments import own_environment_note

    report.checked.append(str(path))
    try:
        call = load_call(path)
        note = own_environment_note(call, path)
        if note is not None and note not in report.notes:
            report.notes.append(note)
    except InvalidError as exc:
        report.problems += exc.problems
    except InputError as exc:
        report.problems.append(Problem(str(path), "-", str(exc)))
    else:
        _note_containment(path, call.protocol.isolation, report)


def _note_containment(path: Path, level: str, report: ValidationReport) -> None:
    """Say when this machine cannot give the call's runs a cgroup (limits then per process)."""
    from workbench.runner.cgroups import unavailable_reason
    from workbench.runner.isolation import isolation_levels

    reason = unavailable_reason() if isolation_levels.get(level).contained else None
    if reason is not None:
        report.notes.append(
            f"{path}: runs at isolation {level!r} get no cgroup on this machine ({reason}): "
            "memory and process limits hold per process, not per run (docs/security.md)"
        )


def _check_submission(folder: Path, workspace: Workspace, report: ValidationReport) -> None:
    from workbench.environments import own_environment_note
    from workbench.notebooks import NO_PHASE_TAGS, has_phase_tags, read_notebook
    from workbench.submissions import load_submission, validate_submission

    report.checked.append(str(folder))
    # Said even when the submission has problems: it changes what its energy figures mean.
    try:
        sub = load_submission(folder)
        if sub.state is not None:
            report.notes.append(
                f"{folder / 'submission.yaml'}: state: {sub.state!r} is read only while the "
                "store's audit log is empty; from then on hand-ins (workbench receive) and "
                "decisions (workbench decide) hold the state: the key can go"
            )
        notebook = folder / sub.notebook
        if not has_phase_tags(read_notebook(notebook)):
            report.notes.append(f"{notebook}: {NO_PHASE_TAGS}")
    except InputError:
        pass  # reported as a problem below
    try:
        _sub, call = validate_submission(folder, workspace)
        note = own_environment_note(call, workspace.calls_dir / f"{call.id}.yaml")
        if note is not None and note not in report.notes:
            report.notes.append(note)
    except InvalidError as exc:
        report.problems += exc.problems
    except InputError as exc:
        report.problems.append(Problem(str(folder / "submission.yaml"), "-", str(exc)))


def validate(workspace: Workspace, paths: list[Path] | None = None) -> ValidationReport:
    """Check the given calls and submissions, or all of the workspace's when none are given."""
    report = ValidationReport()
    if not paths:
        paths = sorted(workspace.calls_dir.glob("*.yaml")) + workspace.submission_dirs()
    for path in paths:
        if path.is_dir() and (path / "submission.yaml").is_file():
            _check_submission(path, workspace, report)
        elif path.name == "submission.yaml":
            _check_submission(path.parent, workspace, report)
        elif path.suffix in {".yaml", ".yml"} and path.is_file():
            _check_call(path, report)
        elif path.is_dir():
            for folder in sorted(p.parent for p in path.rglob("submission.yaml")):
                _check_submission(folder, workspace, report)
        else:
            report.checked.append(str(path))
            report.problems.append(
                Problem(str(path), "-", "not a call file or a submission folder")
            )
    return report
