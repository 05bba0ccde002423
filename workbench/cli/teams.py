"""Commands for project teams: a workspace, a dossier, a run, a hand-in."""

from __future__ import annotations

import json
from pathlib import Path

import click

from workbench.cli import _console, _workspace, isolation_option, main
from workbench.vocabulary import LANGUAGES


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.pass_context
def validate(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Check calls and submissions (all of the workspace's when no PATH is given).

    Prints one line per problem, `path: field: what is wrong`, and exits with 2 if any.
    """
    from workbench.validation import validate as run_validation

    report = run_validation(_workspace(ctx), list(paths))
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    for problem in report.problems:
        click.echo(str(problem))
    if not report.ok:
        click.echo(f"{len(report.problems)} problem(s) in {len(report.checked)} item(s)", err=True)
        ctx.exit(2)
    click.echo(f"{len(report.checked)} item(s) valid")


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--kit",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A call's kit (CALL-kit.zip) to start from, instead of the calls shipped as examples.",
)
def init(folder: Path, kit: Path | None) -> None:
    """Make a workspace in FOLDER: calls, notebook templates, submissions/ and a README."""
    from workbench.kits import init_workspace

    made = init_workspace(folder, kit)
    click.echo(f"created workspace {made}")
    click.echo(f"next: cd {folder} && workbench templates")


@main.command()
@click.argument("call")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the kit (default: CALL-kit.zip).",
)
@click.pass_context
def kit(ctx: click.Context, call: str, out: Path | None) -> None:
    """Write CALL's kit for teams: the call, its templates and a README in French and English."""
    from workbench.kits import write_kit

    path = write_kit(_workspace(ctx), call, out or Path(f"{call}-kit.zip"))
    click.echo(f"wrote {path}")


@main.command()
@click.argument("call")
@click.option("--lang", type=click.Choice(LANGUAGES), default="fr", show_default=True)
@click.pass_context
def questionnaire(ctx: click.Context, call: str, lang: str) -> None:
    """Print CALL's questions with their ids, types and allowed choices."""
    from workbench.kits import question_lines

    document = _workspace(ctx).call(call)
    for line in question_lines(document, lang):
        click.echo(line)


@main.command()
@click.argument("call")
@click.option("--template", "-t", required=True, help="Template id, e.g. water-demand-forecast.")
@click.option("--id", "submission_id", required=True, help="Submission id (a slug).")
@click.option("--team", required=True, help="Team name.")
@click.option("--organisation", help="Organisation (default: the team).")
@click.option("--title", help="Title of the project.")
@click.option(
    "--notebook",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --template custom: the team's own notebook, copied as it is.",
)
@click.pass_context
def new(
    ctx: click.Context,
    call: str,
    template: str,
    submission_id: str,
    team: str,
    organisation: str | None,
    title: str | None,
    notebook: Path | None,
) -> None:
    """Create a submission for CALL from a template (or your own notebook), with its defaults."""
    from workbench.submissions import new_submission

    folder = new_submission(
        _workspace(ctx), call, template, submission_id, team, organisation, title, notebook
    )
    click.echo(f"created {folder}")
    click.echo(
        "next: answer the questionnaire in submission.yaml (needed to hand in with "
        "`workbench pack`, not to run); `workbench run` works now"
    )


@main.command()
@click.argument("submission")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as one JSON object.")
@isolation_option
@click.option("--kernel", default="python3", show_default=True, help="Jupyter kernel name.")
@click.pass_context
def run(
    ctx: click.Context, submission: str, as_json: bool, isolation: str | None, kernel: str
) -> None:
    """Execute a submission (a folder, or CALL/ID) in a fresh kernel and store the run.

    Exit code: 0 when the run succeeded, 1 when it was recorded with another status,
    2 for invalid input (nothing is stored).
    """
    from workbench.batch import run_submission

    record = run_submission(
        _workspace(ctx),
        submission,
        isolation=isolation,
        kernel_name=kernel,
        on_note=lambda note: click.echo(f"note: {note}", err=True),
    )
    if as_json:
        click.echo(json.dumps(record.summary()))
    else:
        style = "green" if record.status == "succeeded" else "red"
        console = _console()
        console.print(
            f"[bold]{record.submission}[/] run {record.run_id}: [{style}]{record.status}[/]"
            f" in {record.duration_s:.1f} s"
        )
        if record.message:
            console.print(f"  {record.message}", markup=False)
        for name, value in sorted(record.metrics.items()):
            console.print(f"  {name} = {value:g}", markup=False)
        console.print(f"  notebook: {record.notebook}", markup=False)
    if record.status != "succeeded":
        ctx.exit(1)


@main.command()
@click.option("--lang", type=click.Choice(LANGUAGES), default="en", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the templates' metadata as JSON.")
@click.pass_context
def templates(ctx: click.Context, lang: str, as_json: bool) -> None:
    """List the notebook templates, from their metadata."""
    import dataclasses

    from rich.table import Table

    from workbench.templates import list_templates

    infos = list_templates(_workspace(ctx))
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(i) for i in infos], indent=2, ensure_ascii=False))
        return
    table = Table(title="Templates")
    for column in ("template", "use case", "title", "primary metric"):
        table.add_column(column, overflow="fold")
    for info in infos:
        metric = info.primary_metric
        table.add_row(
            info.id,
            info.use_case,
            info.text("title", lang),
            f"{metric.get('name', '-')} ({metric.get('direction', '?')} is better)",
        )
    _console().print(table)


@main.command()
@click.argument("submission")
@click.option("--port", default=8888, show_default=True, help="Port on 127.0.0.1.")
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
@click.pass_context
def lab(ctx: click.Context, submission: str, port: int, no_browser: bool) -> None:
    """Open a submission's notebook in JupyterLab, served on 127.0.0.1."""
    import os

    from workbench.lab import lab_command
    from workbench.submissions import load_submission

    folder = _workspace(ctx).submission_dir(submission)
    sub = load_submission(folder)
    command = lab_command(folder, sub.notebook, port=port, open_browser=not no_browser)
    os.execv(command[0], command)


@main.command()
@click.argument("submission")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bundle to write, FILE.zip.",
)
@click.pass_context
def pack(ctx: click.Context, submission: str, out: Path) -> None:
    """Validate SUBMISSION and write the bundle a team hands in: what it declares, a manifest."""
    from workbench.bundles import pack_submission

    packed = pack_submission(_workspace(ctx), submission, out)
    for path in packed.left_out:
        click.echo(f"left out (not declared in submission.yaml): {path}", err=True)
    m = packed.manifest
    click.echo(
        f"wrote {packed.path} ({packed.path.stat().st_size} bytes): {m.call}/{m.submission}, "
        f"{len(m.files)} file(s) of {packed.size} bytes, sha256 {packed.sha256}"
    )
