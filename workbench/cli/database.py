"""`workbench db`: the store's schema revision, and upgrading it to the code's."""

from __future__ import annotations

import click

from workbench.cli import _workspace, main


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
