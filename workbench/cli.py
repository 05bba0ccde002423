"""The `workbench` command: parse, call one library function, report.

Every command turns a `WorkbenchError` into a one-line message and its exit code.
Heavy libraries are imported inside the commands so that `workbench --help` is instant.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from workbench.errors import WorkbenchError
from workbench.runner.isolation import isolation_levels
from workbench.vocabulary import LANGUAGES, STATES

if TYPE_CHECKING:
    from workbench.results import ResultRow

ISOLATION_LEVELS = tuple(isolation_levels.names())
isolation_option = click.option(
    "--isolation",
    type=click.Choice(ISOLATION_LEVELS),
    help="Override the call's isolation level (for local development).",
)


class WorkbenchGroup(click.Group):
    """Turns any `WorkbenchError` from a command into `error: ...` and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WorkbenchError as exc:
            for line in str(exc).splitlines() or [type(exc).__name__]:
                click.echo(f"error: {line}", err=True)
            ctx.exit(exc.exit_code)


def _workspace(ctx: click.Context) -> Any:
    from workbench.workspace import Workspace

    return Workspace.from_env(ctx.obj["workspace"], ctx.obj["db"])


def _console() -> Any:
    import os

    from rich.console import Console

    # Piped or logged output (make, CI) gets rich's 80 columns by default, too narrow for
    # the results tables; a terminal keeps its own width, and $COLUMNS still wins.
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(width=180 if wide else None)


@click.group(cls=WorkbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--workspace",
    "-w",
    type=click.Path(file_okay=False, path_type=Path),
    help="Workspace folder (calls/, submissions/, runs/). Default: $WORKBENCH_HOME, else here.",
)
@click.option(
    "--db", help="SQLAlchemy URL of the store. Default: $WORKBENCH_DB or sqlite:///workbench.db."
)
@click.option("-v", "--verbose", is_flag=True, help="Show the libraries' log messages.")
@click.version_option(package_name="workbench")
@click.pass_context
def main(ctx: click.Context, workspace: Path | None, db: str | None, verbose: bool) -> None:
    """Run, measure and judge AI experiments submitted to public funding calls."""
    ctx.obj = {"workspace": workspace, "db": db}
    _skip_iri_format_checker()
    logging.basicConfig(
        level=logging.INFO if verbose else logging.ERROR, format="%(name)s: %(message)s"
    )
    if not verbose:
        for noisy in ("papermill", "traitlets", "codecarbon"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)


def _skip_iri_format_checker() -> None:
    """Keep jsonschema from loading its optional IRI format checker in this process.

    jsonschema loads it when `rfc3987_syntax` is installed (Jupyter's server brings it
    in), and compiling its grammar costs over a second of CPU at every start of a
    command that reads a notebook. Nothing the workbench validates uses the `iri`
    formats; jsonschema treats the module as absent and leaves those formats unchecked.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


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
@click.argument("call")
@click.option(
    "--workers", type=click.IntRange(min=1), help="Runs at once (default: the number of cores)."
)
@click.option(
    "--scheduler", help="Dask scheduler address, e.g. tcp://host:8786, to run on a cluster."
)
@click.option("--rerun", is_flag=True, help="Run again even what already has a finished run.")
@click.option(
    "--only", multiple=True, metavar="ID", help="Run only these submissions (repeatable)."
)
@isolation_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line per finished run.")
@click.pass_context
def batch(
    ctx: click.Context,
    call: str,
    workers: int | None,
    scheduler: str | None,
    rerun: bool,
    only: tuple[str, ...],
    isolation: str | None,
    as_json: bool,
) -> None:
    """Validate every submission of CALL, run the valid ones, store each run.

    Invalid submissions are listed and skipped; a run that fails is recorded and the
    batch goes on. Started again after an interruption, it runs only what has no
    finished run for the same input. Exit code 0 when the batch completed.
    """
    from workbench.batch import run_batch

    options: dict[str, Any] = {
        "workers": workers,
        "scheduler": scheduler,
        "rerun": rerun,
        "only": only,
        "isolation": isolation,
    }
    workspace = _workspace(ctx)
    if as_json:
        run_batch(
            workspace,
            call,
            on_finish=lambda _job, record: click.echo(json.dumps(record.summary())),
            **options,
        )
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = _console()
    progress = Progress(
        TextColumn("[bold]{task.fields[call]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("running {task.fields[running]} · failed [red]{task.fields[failed]}[/]"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
    )
    running: set[str] = set()
    counts = {"failed": 0}
    task = progress.add_task("", total=None, call=call, running=0, failed=0, start=False)

    def refresh() -> None:
        current = ", ".join(sorted(running))[:80]
        progress.update(task, running=len(running), failed=counts["failed"], description=current)

    def on_plan(plan: Any) -> None:
        for key, problems in plan.invalid:
            console.print(f"[red]invalid[/] {key}: skipped")
            for problem in problems:
                console.print(f"  {problem}", markup=False)
        for key, reason in plan.skipped:
            console.print(f"[dim]skipped {key}: {reason}[/]")
        progress.update(task, total=len(plan.jobs))
        progress.start_task(task)
        progress.start()

    def on_start(job: Any, _record: Any) -> None:
        running.add(job.submission.id)
        refresh()

    def on_finish(job: Any, record: Any) -> None:
        running.discard(job.submission.id)
        counts["failed"] += record.status != "succeeded"
        progress.advance(task)
        refresh()

    try:
        report = run_batch(
            workspace, call, on_plan=on_plan, on_start=on_start, on_finish=on_finish, **options
        )
    finally:
        progress.stop()
    if report.records:
        console.print(_batch_table(call, report.records))
    invalid, skipped = len(report.plan.invalid), len(report.plan.skipped)
    console.print(f"{len(report.records)} run(s), {invalid} invalid, {skipped} skipped")


def _batch_table(call: str, records: list[Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"Batch: {call}")
    for column in ("submission", "status", "s", "gain", "Wh", "message"):
        table.add_column(column, overflow="fold")
    for record in sorted(records, key=lambda r: r.submission):
        gain = record.score.gain_vs_baseline if record.score else None
        energy = record.energy
        wh = f"{energy.total_kwh * 1000:.3g}" if energy and energy.measured else "-"
        style = "green" if record.status == "succeeded" else "red"
        table.add_row(
            record.submission,
            f"[{style}]{record.status}[/]",
            f"{record.duration_s:.1f}",
            "-" if gain is None else f"{gain:+.1%}",
            wh,
            record.message[:120],
        )
    return table


@main.command()
@click.argument("submission")
@click.option(
    "--runs", default=1, show_default=True, type=click.IntRange(min=1), help="How many new runs."
)
@isolation_option
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@click.pass_context
def reproduce(
    ctx: click.Context, submission: str, runs: int, isolation: str | None, as_json: bool
) -> None:
    """Run SUBMISSION again and compare every metric with its reference run.

    The verdict, `reproduced` or `diverged` with the metrics that differ and by how much,
    is stored and shown by `workbench results`. Exit code 1 when it diverged.
    """
    from workbench.reproduction import describe_difference
    from workbench.reproduction import reproduce as run_reproduction

    result = run_reproduction(_workspace(ctx), submission, runs=runs, isolation=isolation)
    if as_json:
        click.echo(result.model_dump_json())
    else:
        console = _console()
        style = "green" if result.verdict == "reproduced" else "red"
        console.print(
            f"[bold]{result.submission}[/]: [{style}]{result.verdict}[/] "
            f"against run {result.reference_run_id} ({len(result.run_ids)} new run(s))"
        )
        for d in result.differences:
            console.print(f"  {describe_difference(d.model_dump())}", markup=False)
    if result.verdict != "reproduced":
        ctx.exit(1)


@main.command()
@click.argument("call")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@click.pass_context
def results(ctx: click.Context, call: str, fmt: str) -> None:
    """List each submission's latest run of CALL, its status and its metrics."""
    from workbench.results import call_results
    from workbench.store import open_store

    workspace = _workspace(ctx)
    protocol = workspace.call(call).protocol  # an unknown call is an error, not an empty table
    with open_store(workspace.db_url) as store:
        rows = call_results(store, call, protocol.reference_machine, drafts=True)
    if fmt == "json":
        click.echo(json.dumps([row.model_dump(mode="json") for row in rows], indent=2))
    elif fmt == "csv":
        import csv

        metric_names = sorted({name for row in rows for name in row.metrics})
        columns = [
            "submission",
            "team",
            "template",
            "run_id",
            "status",
            "duration_s",
            *metric_names,
        ]
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            flat = {**row.model_dump(), **row.metrics}
            writer.writerow([flat.get(c, "") if flat.get(c) is not None else "" for c in columns])
    else:
        _console().print(_results_table(call, rows))


def _energy_cells(row: ResultRow) -> list[str]:
    energy = row.measured_energy()
    if energy is None:
        reason = (row.energy.reason if row.energy else None) or "not measured"
        return ["-", "-", "-", f"[yellow]unmeasured[/] ({reason})"]
    per_1000 = energy.wh_per_1000_predictions
    method = energy.method or "-"
    if row.comparable_reason:
        method += f" [yellow]not comparable: {row.comparable_reason}[/]"
    return [
        f"{(energy.total_kwh or 0.0) * 1000:.3g}",
        "-" if per_1000 is None else f"{per_1000:.3g}",
        f"{energy.co2e_g:.3g}" if energy.co2e_g is not None else "-",
        method,
    ]


def _reproduction_cell(result: dict[str, Any] | None) -> str:
    from workbench.reproduction import describe

    if result is None:
        return "-"
    style = "green" if result["verdict"] == "reproduced" else "red"
    return f"[{style}]{describe(result)}[/]"


def _results_table(call: str, rows: list[ResultRow]) -> Any:
    """The primary metric as the workbench recomputed it, AI against baseline."""
    from rich.table import Table

    table = Table(title=f"Results: {call}")
    for column in ("submission", "team", "template", "status", "s", "metric", "AI", "baseline"):
        table.add_column(column, overflow="fold")
    table.add_column("gain", justify="right")
    table.add_column("Wh", justify="right")
    table.add_column("Wh/1000 pred.", justify="right")
    table.add_column("gCO2e", justify="right")
    table.add_column("method")
    table.add_column("reproduced")
    for row in rows:
        score = row.score
        duration = f"{row.duration_s:.1f}" if row.duration_s is not None else "-"
        status_style = "green" if row.status == "succeeded" else "red"
        gain = row.gain
        gain_text = "-" if gain is None else f"[{'green' if gain > 0 else 'red'}]{gain:+.1%}[/]"
        if score is not None and score.disagrees:
            gain_text += " [yellow](!)[/]"
        table.add_row(
            row.submission_id,
            row.team,
            row.template,
            f"[{status_style}]{row.status}[/]",
            duration,
            score.metric if score else "-",
            f"{score.ai:.4g}" if score else "-",
            f"{score.baseline:.4g}" if score else "-",
            gain_text,
            *_energy_cells(row),
            _reproduction_cell(row.reproduction),
        )
    table.caption = (
        "gain: improvement of the AI over the non-AI baseline, recomputed by the workbench; "
        "(!): the notebook's own numbers differ"
    )
    return table


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


@main.command("export-energy")
@click.argument("run_id")
@click.option(
    "--format", "fmt", type=click.Choice(["boamps", "csv"]), default="boamps", show_default=True
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: stdout).",
)
@click.pass_context
def export_energy(ctx: click.Context, run_id: str, fmt: str, out: Path | None) -> None:
    """Export a run's energy as a BoAmps report (JSON) or as CSV."""
    import csv
    import io

    from workbench.boamps import boamps_report, energy_rows
    from workbench.errors import NotFoundError
    from workbench.runner.records import RunRecord
    from workbench.store import open_store

    with open_store(_workspace(ctx).db_url) as store:
        row = store.run(run_id)
        if row is None:
            raise NotFoundError(f"no run {run_id!r} in the store")
        sub = store.submission(row.submission_key)
    record = RunRecord.model_validate(row.record)
    if fmt == "boamps":
        report = boamps_report(record, sub.title if sub else "", sub.template if sub else "")
        text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    else:
        rows = energy_rows(record)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)


@main.command()
@click.argument("submission")
@click.argument(
    "state",
    type=click.Choice(STATES),
)
@click.option("--reason", default="", help="Why; required to send a dossier back for correction.")
@click.option("--by", "actor", help="Who decides (default: the current user).")
@click.pass_context
def decide(ctx: click.Context, submission: str, state: str, reason: str, actor: str | None) -> None:
    """Move SUBMISSION (a folder, or CALL/ID) to STATE; the change is logged.

    draft -> submitted -> in_review -> accepted | rejected | dismissed; in_review ->
    submitted sends it back for correction. An illegal transition is refused (exit 2).
    """
    import getpass

    from workbench.dossiers import decide as make_decision

    transition = make_decision(
        _workspace(ctx), submission, state, actor=actor or getpass.getuser(), reason=reason
    )
    click.echo(
        f"{transition.submission}: {transition.from_state} -> {transition.to_state} "
        f"by {transition.actor} at {transition.at:%Y-%m-%d %H:%M}"
    )


@main.command()
@click.argument("call")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@click.pass_context
def stats(ctx: click.Context, call: str, as_json: bool) -> None:
    """Template usage statistics of CALL: templates, AI against baseline, energy, methods."""
    from workbench.store import open_store
    from workbench.usage import call_usage

    workspace = _workspace(ctx)
    workspace.call(call)
    with open_store(workspace.db_url) as store:
        usage = call_usage(store, call)
    if as_json:
        click.echo(json.dumps(usage, indent=2))
        return
    console = _console()
    console.print(f"[bold]{call}[/]: {usage['submissions']} submission(s), {usage['runs']} run(s)")
    for template, count in usage["templates"].items():
        console.print(f"  {template}: {count}")
    console.print(
        f"AI beats its baseline: {usage['ai_beats_baseline']} of {usage['scored']} scored"
    )
    console.print(
        f"energy of all runs: {usage['energy_kwh'] * 1000:.3g} Wh, {usage['co2e_g']:.3g} gCO2e "
        f"({usage['runs_measured']} measured run(s))"
    )
    share = usage["hardware_counter_share"]
    methods = ", ".join(f"{m}: {n}" for m, n in usage["methods"].items()) or "none"
    console.print(
        "measured by hardware counters: "
        + ("-" if share is None else f"{share:.0%}")
        + f" (methods: {methods})"
    )


@main.command()
@click.argument("call")
@click.option("--port", default=8866, show_default=True, help="Port on 127.0.0.1.")
@click.option("--lang", type=click.Choice(LANGUAGES), default="fr", show_default=True)
@click.option(
    "--pool-size",
    default=2,
    show_default=True,
    type=click.IntRange(min=0),
    help="Kernels kept ready (preheated) for the next pages; 0 starts one per page.",
)
@click.pass_context
def serve(ctx: click.Context, call: str, port: int, lang: str, pool_size: int) -> None:
    """Serve the jury dashboards of CALL (Voilà, on 127.0.0.1) until interrupted.

    Jurors open the personal link that `workbench jury add` printed for them.
    """
    from workbench.dashboards.server import serve as serve_dashboards

    click.echo(f"serving the jury dashboards of {call} on http://127.0.0.1:{port}/", err=True)
    serve_dashboards(_workspace(ctx), call, port=port, lang=lang, pool_size=pool_size)


@main.group()
def jury() -> None:
    """Jurors of a call: personal links, conflicts of interest, progress."""


@jury.command("add")
@click.argument("call")
@click.argument("name")
@click.option(
    "--conflict",
    "conflicts",
    multiple=True,
    metavar="SUBMISSION_ID",
    help="A submission this juror declares a conflict of interest with (repeatable).",
)
@click.option("--port", default=8866, show_default=True, help="Port of `workbench serve`.")
@click.pass_context
def jury_add(
    ctx: click.Context, call: str, name: str, conflicts: tuple[str, ...], port: int
) -> None:
    """Create a juror of CALL and print their personal link (shown once: keep it)."""
    from workbench.jury import add_juror, juror_link

    juror, token = add_juror(_workspace(ctx.find_root()), call, name, conflicts)
    click.echo(f"juror {juror.name} (#{juror.id}) of {juror.call}", err=True)
    if juror.conflicts:
        click.echo(f"conflicts of interest: {', '.join(juror.conflicts)}", err=True)
    click.echo(juror_link(token, port))


@jury.command("list")
@click.argument("call")
@click.pass_context
def jury_list(ctx: click.Context, call: str) -> None:
    """List the jurors of CALL and how many submissions each has scored."""
    from rich.table import Table

    from workbench.jury import progress

    table = Table(title=f"Jury: {call}")
    for column in ("#", "juror", "scored", "saves", "last saved", "conflicts"):
        table.add_column(column, overflow="fold")
    for p in progress(_workspace(ctx.find_root()), call):
        last = p.last_saved.strftime("%Y-%m-%d %H:%M") if p.last_saved else "-"
        table.add_row(
            str(p.juror.id),
            p.juror.name,
            f"{p.scored}/{p.to_score}",
            str(p.saves),
            last,
            ", ".join(p.juror.conflicts) or "-",
        )
    _console().print(table)


@main.command()
@click.argument("call")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="FILE.xlsx, FILE.html or FILE.csv: the format follows the extension.",
)
@click.option("--lang", type=click.Choice(LANGUAGES), default="fr", show_default=True)
@click.pass_context
def report(ctx: click.Context, call: str, out: Path, lang: str) -> None:
    """Write CALL's report for the funding committee: ranking, metrics, energy, jury, states."""
    from workbench.reports import export_report

    path = export_report(_workspace(ctx), call, out, lang)
    click.echo(f"wrote {path}")


@main.group()
def db() -> None:
    """The store's schema: its revision, and upgrading it to the code's."""


db_option = click.option(
    "--db", "url", help="SQLAlchemy URL of the store (default: the workspace's)."
)


def _store_url(ctx: click.Context, url: str | None) -> str:
    return url or str(_workspace(ctx.find_root()).db_url)


@db.command("upgrade")
@db_option
@click.pass_context
def db_upgrade(ctx: click.Context, url: str | None) -> None:
    """Bring the store to the code's schema revision (a store made before revisions too)."""
    from workbench.migrations import upgrade_store

    done = upgrade_store(_store_url(ctx, url))
    if done.stamped:
        click.echo(f"{done.url}: made before schema revisions, recognised as {done.before}")
    if done.before is None:
        click.echo(f"{done.url}: created at revision {done.after}")
    elif done.before == done.after:
        click.echo(f"{done.url}: already at revision {done.after}")
    else:
        click.echo(f"{done.url}: upgraded from revision {done.before} to {done.after}")


@db.command("current")
@db_option
@click.pass_context
def db_current(ctx: click.Context, url: str | None) -> None:
    """Print the store's schema revision and the code's."""
    from workbench.migrations import HEAD, is_known, store_revision

    revision, has_tables = store_revision(_store_url(ctx, url))
    if revision == HEAD:
        click.echo(f"store: {revision} (up to date)")
    elif revision is not None and is_known(revision):
        click.echo(f"store: {revision} (older than the code: run `workbench db upgrade`)")
    elif revision is not None:
        click.echo(f"store: {revision} (unknown here: a newer workbench wrote it)")
    elif has_tables:
        click.echo("store: none, made before schema revisions (run `workbench db upgrade`)")
    else:
        click.echo("store: empty (the next command creates it)")
    click.echo(f"code:  {HEAD}")


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


@main.command()
@click.argument("bundles", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--accept-late", is_flag=True, help="Accept bundles received after the deadline.")
@click.option("--reason", default="", help="Why late bundles are accepted (with --accept-late).")
@click.option("--by", "actor", help="Who receives (default: the current user).")
@click.pass_context
def receive(
    ctx: click.Context, bundles: tuple[Path, ...], accept_late: bool, reason: str, actor: str | None
) -> None:
    """Check each bundle, land it as the dossier's next version and write its receipt.

    A refused bundle changes nothing; the others are still received. Exits with 2 if any
    was refused.
    """
    import getpass

    from workbench.bundles import receive_bundle

    if accept_late and not reason.strip():
        raise click.UsageError("--accept-late needs --reason TEXT")
    if reason and not accept_late:
        raise click.UsageError("--reason goes with --accept-late")
    workspace = _workspace(ctx)
    exit_code = 0
    for bundle in bundles:
        try:
            reception = receive_bundle(
                workspace,
                bundle,
                accept_late=accept_late,
                reason=reason,
                actor=actor or getpass.getuser(),
            )
        except WorkbenchError as exc:
            for line in str(exc).splitlines():
                click.echo(f"error: {line}", err=True)
            exit_code = max(exit_code, exc.exit_code)
            continue
        click.echo(reception.summary())
        click.echo(f"receipt: {reception.text_receipt}")
    if exit_code:
        ctx.exit(exit_code)


if __name__ == "__main__":
    main()
