"""Commands for juries: the dashboards' server, jurors and their personal links."""

from __future__ import annotations

import getpass
import json
from typing import Any

import click

from workbench.cli import _console, _workspace, main
from workbench.dashboards import server  # light: its heavy imports are inside functions
from workbench.vocabulary import LANGUAGES


@main.command()
@click.argument("call")
@click.option("--port", default=server.DEFAULT_PORT, show_default=True, help="Port on 127.0.0.1.")
@click.option("--lang", type=click.Choice(LANGUAGES), default="fr", show_default=True)
@click.option(
    "--pool-size",
    default=server.DEFAULT_POOL_SIZE,
    show_default=True,
    type=click.IntRange(min=0),
    help="Kernels kept ready (preheated) for the next pages; 0 starts one per page.",
)
@click.option(
    "--idle-timeout",
    default=server.DEFAULT_IDLE_TIMEOUT_S,
    show_default=True,
    type=click.IntRange(min=1),
    metavar="SECONDS",
    help="Shut a page's kernel down after this long without activity, even if open.",
)
@click.option(
    "--closed-timeout",
    default=server.DEFAULT_CLOSED_TIMEOUT_S,
    show_default=True,
    type=click.IntRange(min=1),
    metavar="SECONDS",
    help="Shut a page's kernel down this long after its page was closed.",
)
@click.option(
    "--max-kernels",
    default=server.DEFAULT_MAX_KERNELS,
    show_default=True,
    type=click.IntRange(min=1),
    help="Most kernels at once, the preheated ones included; past it a page asks to retry.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    call: str,
    port: int,
    lang: str,
    pool_size: int,
    idle_timeout: int,
    closed_timeout: int,
    max_kernels: int,
) -> None:
    """Serve the jury dashboards of CALL (Voilà, on 127.0.0.1) until interrupted.

    Jurors open the personal link that `workbench jury add` printed for them.
    """
    from workbench.dashboards.server import serve as serve_dashboards

    click.echo(f"serving the jury dashboards of {call} on http://127.0.0.1:{port}/", err=True)
    serve_dashboards(
        _workspace(ctx),
        call,
        port=port,
        lang=lang,
        pool_size=pool_size,
        idle_timeout=idle_timeout,
        closed_timeout=closed_timeout,
        max_kernels=max_kernels,
    )


@main.group()
def jury() -> None:
    """Jurors of a call: personal links, conflicts of interest, assignments, progress."""


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
@click.option(
    "--port", default=server.DEFAULT_PORT, show_default=True, help="Port of `workbench serve`."
)
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
@click.option("--json", "as_json", is_flag=True, help="Print jurors and dossiers as JSON.")
@click.pass_context
def jury_list(ctx: click.Context, call: str, as_json: bool) -> None:
    """List the jurors of CALL: their assigned dossiers scored, and every dossier scored."""
    from workbench import assignments
    from workbench.jury import progress

    workspace = _workspace(ctx.find_root())
    if as_json:
        click.echo(json.dumps(assignments.read(workspace, call, assignments.overview)))
        return
    from rich.table import Table

    table = Table(title=f"Jury: {call}")
    for column in ("#", "juror", "assigned done", "scored", "saves", "last saved", "conflicts"):
        table.add_column(column, overflow="fold")
    for p in progress(workspace, call):
        last = p.last_saved.strftime("%Y-%m-%d %H:%M") if p.last_saved else "-"
        table.add_row(
            str(p.juror.id),
            p.juror.name,
            f"{p.done}/{p.assigned}",
            f"{p.scored}/{p.to_score}",
            str(p.saves),
            last,
            ", ".join(p.juror.conflicts) or "-",
        )
    _console().print(table)


def _changes(outcome: Any, title: str) -> None:
    """What a command changed (a table), then each juror's load."""
    from rich.table import Table

    console = _console()
    if outcome.changes:
        table = Table(title=title)
        for column in ("submission", "juror", "change", "origin"):
            table.add_column(column, overflow="fold")
        for change in outcome.changes:
            table.add_row(change.submission, change.juror, change.action, change.origin)
        console.print(table)
    else:
        console.print("nothing to change")
    loads = ", ".join(f"{name} {n}" for name, n in outcome.loads.items()) or "-"
    console.print(f"{len(outcome.changes)} change(s); dossiers per juror: {loads}")


@jury.command("assign")
@click.argument("call")
@click.option(
    "--per-submission",
    type=click.IntRange(min=1),
    help="Jurors each handed-in dossier gets; only the missing places are filled.",
)
@click.option("--juror", help="Assign this juror (by name) by hand, with --submission.")
@click.option("--submission", "submission", metavar="ID", help="The dossier of --juror.")
@click.option("--remove", is_flag=True, help="Withdraw --juror from --submission instead.")
@click.option("--by", "actor", help="Who assigns (default: the current user).")
@click.pass_context
def jury_assign(
    ctx: click.Context,
    call: str,
    per_submission: int | None,
    juror: str | None,
    submission: str | None,
    remove: bool,
    actor: str | None,
) -> None:
    """Assign jurors to the handed-in dossiers of CALL, evenly and without conflicts.

    `--per-submission N` fills every dossier up to N jurors, keeping earlier assignments;
    `--juror NAME --submission ID` assigns one by hand (`--remove` withdraws).
    """
    from workbench import assignments
    from workbench.errors import InputError

    workspace = _workspace(ctx.find_root())
    who = actor or getpass.getuser()
    manual = juror is not None or submission is not None or remove
    if manual and per_submission is not None:
        raise InputError("give either --per-submission or --juror with --submission, not both")
    if manual:
        if juror is None or submission is None:
            raise InputError("assigning by hand needs both --juror NAME and --submission ID")
        outcome = assignments.assign_by_hand(workspace, call, juror, submission, who, remove=remove)
    elif per_submission is not None:
        outcome = assignments.auto_assign(workspace, call, per_submission, who)
    else:
        raise InputError("give --per-submission N, or --juror NAME --submission ID")
    _changes(outcome, f"Assignments: {call}")


@jury.command("rapporteur")
@click.argument("call")
@click.argument("submission")
@click.argument("juror")
@click.option("--by", "actor", help="Who names them (default: the current user).")
@click.pass_context
def jury_rapporteur(
    ctx: click.Context, call: str, submission: str, juror: str, actor: str | None
) -> None:
    """Name JUROR, one of the dossier's assigned jurors, the rapporteur of SUBMISSION."""
    from workbench import assignments

    workspace = _workspace(ctx.find_root())
    who = actor or getpass.getuser()
    _changes(
        assignments.name_rapporteur(workspace, call, submission, juror, who),
        f"Rapporteurs: {call}",
    )


@jury.command("log")
@click.argument("call")
@click.pass_context
def jury_log(ctx: click.Context, call: str) -> None:
    """Every change of CALL's assignments and rapporteurs, oldest first (Paris time)."""
    from rich.table import Table

    from workbench import assignments

    log = assignments.read(_workspace(ctx.find_root()), call, assignments.assignment_log)
    table = Table(title=f"Assignment log: {call} (Europe/Paris)")
    for column in ("at", "submission", "juror", "change", "origin", "by"):
        table.add_column(column, overflow="fold")
    for entry in log:
        at = entry.at.strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(at, entry.submission, entry.juror, entry.action, entry.origin, entry.actor)
    _console().print(table)


@jury.command("remind")
@click.argument("call")
@click.option("--json", "as_json", is_flag=True, help="Print the reminders as JSON.")
@click.pass_context
def jury_remind(ctx: click.Context, call: str, as_json: bool) -> None:
    """Per juror of CALL, the assigned dossiers still to score.

    Personal links are not stored (only their hash is): `workbench jury renew` gives a
    juror who lost theirs a new one.
    """
    from workbench import assignments

    found = assignments.read(_workspace(ctx.find_root()), call, assignments.reminders)
    if as_json:
        rows = [{"id": r.juror.id, "name": r.juror.name, "to_score": r.to_score} for r in found]
        click.echo(json.dumps({"call": call, "jurors": rows}))
        return
    console = _console()
    for r in found:
        if r.to_score:
            console.print(f"{r.juror.name} (#{r.juror.id}): {len(r.to_score)} to score: "
                          + ", ".join(r.to_score))  # fmt: skip
        else:
            console.print(f"{r.juror.name} (#{r.juror.id}): nothing left to score")
    console.print(
        "links are not stored: `workbench jury renew CALL JUROR` issues a juror a new one"
    )


@jury.command("renew")
@click.argument("call")
@click.argument("juror")
@click.option(
    "--port", default=server.DEFAULT_PORT, show_default=True, help="Port of `workbench serve`."
)
@click.pass_context
def jury_renew(ctx: click.Context, call: str, juror: str, port: int) -> None:
    """Give JUROR a new personal link; their old link stops opening anything."""
    from workbench.assignments import renew_link
    from workbench.jury import juror_link

    found, token = renew_link(_workspace(ctx.find_root()), call, juror)
    click.echo(f"juror {found.name} (#{found.id}) of {found.call}: old link revoked", err=True)
    click.echo(juror_link(token, port))
