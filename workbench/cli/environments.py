"""`workbench env`: a call's reference environment, built once and locked."""

from __future__ import annotations

import click

from workbench.cli import _workspace, main


@main.group()
def env() -> None:
    """A call's own kernel environment: build it (once), show its lock."""


@env.command("build")
@click.argument("call")
@click.option("-v", "--verbose", is_flag=True, help="Print each installer command.")
@click.pass_context
def env_build(ctx: click.Context, call: str, verbose: bool) -> None:
    """Build CALL's environment (ipykernel, `record`, the call's requirements); print its lock hash.

    Needs the package index (or pip's and uv's own settings for a local one) only when the
    environment is not built yet; building again is a no-op.
    """
    from workbench import environments

    workspace = _workspace(ctx.find_root())
    document = workspace.call(call)
    spec = environments.declared(document, workspace.calls_dir)
    if spec is None:
        from workbench.errors import InputError

        raise InputError(
            f"call {call!r} declares no protocol.environment: its kernels run in the "
            "workbench's own environment, nothing to build"
        )
    log = (lambda line: click.echo(line, err=True)) if verbose else None
    built = environments.build(spec, environments.default_root(workspace.root), log=log)
    state = "built" if built.created else "already built"
    folder = built.folder
    if folder.is_relative_to(workspace.root.resolve()):
        folder = folder.relative_to(workspace.root.resolve())
    click.echo(f"{folder}: {state}")
    click.echo(f"lock sha256: {built.environment.lock_sha256}")


@env.command("show")
@click.argument("call")
@click.pass_context
def env_show(ctx: click.Context, call: str) -> None:
    """Print CALL's lock: every distribution of its built environment, `name==version`."""
    from workbench import environments

    workspace = _workspace(ctx.find_root())
    document = workspace.call(call)
    spec = environments.declared(document, workspace.calls_dir)
    if spec is None:
        click.echo(f"# call {call!r}: no protocol.environment (the workbench's own)")
        return
    lock = environments.read_lock(spec, environments.default_root(workspace.root))
    if lock is None:
        raise environments.not_built(call)
    click.echo(f"# lock sha256: {environments.lock_sha256(lock)}")
    click.echo(lock, nl=False)
