"""The executors' wire format: a run shipped to a worker as plain data, and brought back.

No shared filesystem is assumed. `ship` packs the submission document, the call, the
notebook bytes and the data bytes; `remote_execute` runs on the worker: it rebuilds
them in a scratch folder, executes (isolated, metered with the worker's own meter) and
returns the record and the run folder's files; `land` writes those into a local `runs/`.
Nothing here touches the store: storing the landed record is the coordinator's job.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.runner.records import KernelEnvironment, RunRecord

if TYPE_CHECKING:
    from workbench.calls import Call
    from workbench.submissions import Submission


def ship(
    folder: Path,
    submission: Submission,
    call: Call,
    *,
    run_id: str,
    isolation: str | None,
    kernel_name: str,
    environment: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a worker needs to run `submission` (in `folder`), as plain data."""
    return {
        "submission": submission.model_dump(mode="json"),
        "call": call.model_dump(mode="json"),
        "notebook": (folder / submission.notebook).read_bytes(),
        "data": {item.path: (folder / item.path).read_bytes() for item in submission.data},
        "run_id": run_id,
        "isolation": isolation,
        "kernel_name": kernel_name,
        # The call's environment: declared requirements, the coordinator's lock and its hash.
        "environment": environment,
    }


def worker_environment(wire: dict[str, Any]) -> KernelEnvironment:
    """On a worker: the call's environment, built here from the coordinator's lock once,
    then verified; `ExecutionError` when this worker's has another lock."""
    from workbench import environments

    spec = environments.Declared.from_wire(wire["declared"])
    root = environments.worker_root()
    return environments.ensure(spec, root, wire["lock_sha256"], wire["lock"])


def worker_environment_failure(wire: dict[str, Any]) -> str | None:
    """Runs on every worker before any task: why it cannot provide the environment, or None."""
    from workbench.errors import WorkbenchError

    try:
        worker_environment(wire)
    except WorkbenchError as exc:
        return str(exc)
    return None


def remote_execute(payload: dict[str, Any]) -> dict[str, Any]:
    """Runs on a worker: rebuild the submission in a scratch folder, execute, send back."""
    import shutil
    import tempfile

    from workbench.calls import Call
    from workbench.runner.execute import execute_submission
    from workbench.submissions import Submission

    sub = Submission.model_validate(payload["submission"])
    call = Call.model_validate(payload["call"])
    scratch = Path(tempfile.mkdtemp(prefix="workbench-task-"))
    try:
        folder = scratch / "submission"
        folder.mkdir()
        (folder / sub.notebook).write_bytes(payload["notebook"])
        for rel, content in payload["data"].items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(content)
        wire_env = payload.get("environment")
        environment = worker_environment(wire_env) if wire_env else None
        record = execute_submission(
            folder,
            sub,
            call,
            scratch / "runs",
            isolation=payload["isolation"],
            kernel_name=payload["kernel_name"],
            run_id=payload["run_id"],
            environment=environment,
        )
        run_dir = Path(record.run_dir)
        files = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
        return {"record": record.model_dump(mode="json"), "files": files}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def land(result: dict[str, Any], runs_dir: Path) -> RunRecord:
    """Write a worker's run folder under `runs_dir` and point the record at it."""
    record = RunRecord.model_validate(result["record"])
    run_dir = (runs_dir / record.run_id).resolve()
    run_dir.mkdir(parents=True, exist_ok=False)
    for name, content in result["files"].items():
        (run_dir / Path(name).name).write_bytes(content)
    notebook = run_dir / Path(record.notebook).name
    return record.model_copy(update={"run_dir": str(run_dir), "notebook": str(notebook)})
