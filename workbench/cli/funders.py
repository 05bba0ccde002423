"""Commands for funders: batches, reproduction, results, decisions, receptions, reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from workbench.cli import _console, _workspace, isolation_option, main
from workbench.errors import WorkbenchError
from workbench.vocabulary import LANGUAGES, STATES

if TYPE_CHECKING:
    from workbench.results import ResultRow


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

    Each submission runs as many times as the call's `protocol.repeats`, the runs
    interleaved across submissions; its repeats then give its reproduction verdict.
    Invalid submissions are listed and skipped; a run that fails is recorded and the
    batch goes on. Started again after an interruption, it runs only the repeats that
    have no finished run for the same input, and first marks `abandoned` the runs an
    ended batch of this machine left `running`. Exit code 0 when the batch completed,
    1 when some run's execution itself failed (each is listed; the others ran).
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
        report = run_batch(
            workspace,
            call,
            on_finish=lambda job, record: click.echo(
                json.dumps({**record.summary(), "repeat": job.repeat, "repeats": job.repeats})
            ),
            **options,
        )
        for label, reason in report.failed:
            click.echo(f"error: {label}: {reason}", err=True)
        if report.failed:
            ctx.exit(1)
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

    done: list[tuple[Any, Any]] = []

    def on_start(job: Any, _record: Any) -> None:
        running.add(job.label)  # "team-a run 2/3" when the call asks for repeats
        refresh()

    def on_finish(job: Any, record: Any) -> None:
        running.discard(job.label)
        done.append((job, record))
        counts["failed"] += record.status != "succeeded"
        progress.advance(task)
        refresh()

    try:
        report = run_batch(
            workspace, call, on_plan=on_plan, on_start=on_start, on_finish=on_finish, **options
        )
    finally:
        progress.stop()
    if done:
        console.print(_batch_table(call, done))
    for verdict in report.reproductions:
        _print_verdict(console, verdict, f"{len(verdict.run_ids) + 1} runs of the same input")
    invalid, skipped = len(report.plan.invalid), len(report.plan.skipped)
    console.print(f"{len(report.records)} run(s), {invalid} invalid, {skipped} skipped")
    for label, reason in report.failed:  # the batch went on; the exit code says so
        console.print(f"error {label}: {reason}", markup=False, style="red")
    if report.failed:
        ctx.exit(1)


def _batch_table(call: str, done: list[tuple[Any, Any]]) -> Any:
    from rich.table import Table

    from workbench.units import ENERGY, scale

    measured = [r.energy for _, r in done if r.energy is not None and r.energy.measured]
    unit = scale([e.total_kwh for e in measured], ENERGY)
    table = Table(title=f"Batch: {call}")
    for column in ("submission", "run", "status", "s", "gain", unit.header("energy"), "message"):
        table.add_column(column, overflow="fold")
    for job, record in sorted(done, key=lambda pair: (pair[1].submission, pair[0].repeat)):
        gain = record.score.gain_vs_baseline if record.score else None
        energy = record.energy
        wh = _figure(energy.total_kwh, unit) if energy and energy.measured else "-"
        style = "green" if record.status == "succeeded" else "red"
        table.add_row(
            record.submission,
            f"{job.repeat}/{job.repeats}",
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
    from workbench.reproduction import reproduce as run_reproduction

    result = run_reproduction(_workspace(ctx), submission, runs=runs, isolation=isolation)
    if as_json:
        click.echo(result.model_dump_json())
    else:
        _print_verdict(_console(), result, f"{len(result.run_ids)} new run(s)")
    if result.verdict != "reproduced":
        ctx.exit(1)


def _print_verdict(console: Any, result: Any, runs: str) -> None:
    """A reproduction verdict, from `reproduce` or from a batch's repeats, and its differences."""
    from workbench.reproduction import describe_difference

    style = "green" if result.verdict == "reproduced" else "red"
    console.print(
        f"[bold]{result.submission}[/]: [{style}]{result.verdict}[/] "
        f"against run {result.reference_run_id} ({runs})"
    )
    for d in result.differences:
        console.print(f"  {describe_difference(d.model_dump())}", markup=False)


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


class _EnergyUnits:
    """The units of the results table's energy columns: one per column, for every row."""

    def __init__(self, rows: list[ResultRow]) -> None:
        from workbench.units import CARBON, ENERGY, ENERGY_PER_1000, scale

        measured = [e for row in rows if (e := row.measured_energy()) is not None]
        self.total = scale([e.total_kwh for e in measured], ENERGY)
        self.per_1000 = scale([e.wh_per_1000_predictions for e in measured], ENERGY_PER_1000)
        self.carbon = scale([e.co2e_g for e in measured], CARBON)


def _figure(value: float | None, unit: Any, reason: str | None = None) -> str:
    """A figure in its column's unit (the header names it); unknown in words, never 0."""
    from workbench.i18n import reason_label
    from workbench.units import unknown

    if value is None:
        return f"[yellow]{unknown('en', reason_label(reason, 'en'))}[/]"
    return str(unit.number(value, "en"))


def _with_interval(
    value: float | None, interval: tuple[float, float] | None, row: ResultRow, unit: Any
) -> str:
    from workbench.units import format_interval

    text = _figure(value, unit)
    if value is None:
        return text
    if interval is not None:
        return f"{text} {format_interval(interval, unit, 'en')}"
    return text if row.repeats <= 1 else f"{text} [dim](no interval)[/]"


def _energy_cells(row: ResultRow, units: _EnergyUnits) -> list[str]:
    energy = row.measured_energy()
    if energy is None:
        reason = (row.energy.reason if row.energy else None) or "not measured"
        return ["-", "-", "-", f"[yellow]unmeasured[/] ({reason})"]
    method = energy.method or "-"
    if row.comparable_reason:
        method += f" [yellow]not comparable: {row.comparable_reason}[/]"
    per_1000 = energy.wh_per_1000_predictions
    return [
        _with_interval(energy.total_kwh, row.total_kwh_ci95, row, units.total),
        _with_interval(per_1000, row.wh_per_1000_predictions_ci95, row, units.per_1000)
        if per_1000 is not None
        else _figure(None, units.per_1000, energy.unknown.get("wh_per_1000_predictions")),
        _figure(energy.co2e_g, units.carbon, energy.unknown.get("co2e_g")),
        method,
    ]


def _notes_cell(row: ResultRow, overlaps: list[str]) -> str:
    """What a jury must see beside the figures: untagged phases, repeats, overlaps."""
    from workbench.charts import UNTAGGED
    from workbench.i18n import t

    notes = []
    if UNTAGGED in row.flags:
        notes.append(f"[yellow]{t('phases_untagged', 'en')}[/]")
    if row.repeats > 1:
        notes.append(f"median of {row.repeats} runs")
    elif row.measured:
        notes.append(f"[dim]{t('one_run', 'en')}[/]")
    if overlaps:
        others = ", ".join(key.split("/", 1)[1] for key in overlaps)
        notes.append(f"not distinguishable on energy from {others}")
    return "; ".join(notes) or "-"


def _reproduction_cell(result: dict[str, Any] | None) -> str:
    from workbench.reproduction import describe

    if result is None:
        return "-"
    style = "green" if result["verdict"] == "reproduced" else "red"
    return f"[{style}]{describe(result)}[/]"


def _results_table(call: str, rows: list[ResultRow]) -> Any:
    """The primary metric as the workbench recomputed it, AI against baseline.

    Each energy column takes one readable unit, named in its header; intervals are 95 %
    intervals across the repeated runs, in the unit of the column.
    """
    from rich.table import Table

    from workbench.charts import energy_overlaps

    units = _EnergyUnits(rows)
    overlaps = energy_overlaps(rows)
    table = Table(title=f"Results: {call}")
    for column in ("submission", "team", "template", "status", "s", "metric", "AI", "baseline"):
        table.add_column(column, overflow="fold")
    table.add_column("gain", justify="right")
    table.add_column(units.total.header("energy"), justify="right")
    table.add_column(units.per_1000.header("energy/1000 pred."), justify="right")
    table.add_column(units.carbon.header("emissions"), justify="right")
    table.add_column("method")
    table.add_column("notes")
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
            *_energy_cells(row, units),
            _notes_cell(row, overlaps.get(row.submission, [])),
            _reproduction_cell(row.reproduction),
        )
    table.caption = (
        "gain: improvement of the AI over the non-AI baseline, recomputed by the workbench; "
        "(!): the notebook's own numbers differ; \\[low, high]: 95 % t-interval across the "
        "repeated runs"
    )
    return table


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

    from workbench.boamps import boamps_report, energy_rows, repeats_interval
    from workbench.errors import NotFoundError
    from workbench.runner.records import RunRecord
    from workbench.store import open_store

    with open_store(_workspace(ctx).db_url) as store:
        row = store.run(run_id)
        if row is None:
            raise NotFoundError(f"no run {run_id!r} in the store")
        sub = store.submission(row.submission_key)
        runs = store.runs(submission_key=row.submission_key)
    record = RunRecord.model_validate(row.record)
    if fmt == "boamps":
        report = boamps_report(
            record,
            sub.title if sub else "",
            sub.template if sub else "",
            total_kwh_ci95=repeats_interval(runs, row.input_sha256),
        )
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
    from workbench.units import CARBON, ENERGY, format_quantity

    energy = format_quantity(usage["energy_kwh"], ENERGY, "en")
    carbon = format_quantity(usage["co2e_g"], CARBON, "en")
    console.print(
        f"energy of all runs: {energy}, {carbon} ({usage['runs_measured']} measured run(s))"
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


@main.command()
@click.argument("call")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder that gets one letter per handed-in dossier (ID.html).",
)
@click.option("--lang", type=click.Choice(LANGUAGES), default="fr", show_default=True)
@click.pass_context
def feedback(ctx: click.Context, call: str, out: Path, lang: str) -> None:
    """Write each team's feedback letter: results, decision, the jury's messages to it."""
    from workbench.feedback import write_letters

    paths = write_letters(_workspace(ctx), call, out, lang)
    click.echo(f"wrote {len(paths)} letter(s) to {out}")


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
