"""The `workbench` command: parse, call one library function, report.

Every command turns a `WorkbenchError` into a one-line message and its exit code.
Heavy libraries are imported inside the commands so that `workbench --help` is instant.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from workbench.errors import WorkbenchError
from workbench.runner.isolation import isolation_levels

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


# The commands, by who uses them; importing a module registers its commands on `main`.
from workbench.cli import database, environments, funders, juries, teams  # noqa: E402

__all__ = ["database", "environments", "funders", "juries", "main", "teams"]
