"""Runs that get stored: one submission now; many, locally or on a cluster, later."""

from __future__ import annotations

from pathlib import Path

from workbench.runs import RunRecord
from workbench.workspace import Workspace


def run_submission(
    workspace: Workspace,
    ref: str | Path,
    *,
    isolation: str | None = None,
    kernel_name: str = "python3",
) -> RunRecord:
    """Validate, execute and store one submission; return its finished run record.

    Nothing is written to the store unless the submission is valid. The run is stored
    as `running` before its kernel starts, and moved to its final status at the end.
    """
    from workbench.execute import execute_submission
    from workbench.store import open_store
    from workbench.submissions import validate_submission

    folder = workspace.submission_dir(ref)
    sub, call = validate_submission(folder, workspace)
    if isolation is not None:
        from workbench.sandbox import isolation_levels

        isolation_levels.get(isolation)  # an unknown level is bad input: fail before storing
    store = open_store(workspace.db_url)
    try:
        store.register(call, sub)
        record = execute_submission(
            folder,
            sub,
            call,
            workspace.runs_dir,
            isolation=isolation,
            kernel_name=kernel_name,
            on_start=store.start_run,
        )
        store.finish_run(record)
    finally:
        store.close()
    return record
