"""Commands for juries: the dashboards' server, jurors and their personal links."""

from __future__ import annotations

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
