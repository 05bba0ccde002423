"""The executors' wire format: a run shipped to a worker as plain data, and brought back.

No shared filesystem is assumed. `ship` packs the submission document, the call, the
notebook bytes and the data bytes; `remote_execute` runs on the worker: it rebuilds
them in a scratch folder, executes (isolated, metered with the worker's own meter) and
returns the record and the run folder's files; `land` writes those into a local `runs/`.
Nothing here touches the store: storing the landed record is the coordinator's job.

The run folder is written by the notebook, so nothing in it is followed: only regular
files directly in it are packed, each opened with `O_NOFOLLOW` and checked with `fstat`
against its `lstat`, under `MAX_FILE_BYTES` each and `MAX_RUN_BYTES` together. A link,
a folder, a device, a file that changed under us or one over the caps is skipped and
named in `RunRecord.skipped_files` with the reason; it never aborts the run.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.runner.records import KernelEnvironment, RunRecord

# What a run folder may send back: the executed notebook holds the outputs (capped by the
# output budget at about 60 MB), the rest is logs and the record.
MAX_FILE_BYTES = 256 * 1024**2
MAX_RUN_BYTES = 512 * 1024**2

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
        files, skipped = pack_run_folder(Path(record.run_dir))
        record = record.model_copy(update={"skipped_files": {**record.skipped_files, **skipped}})
        return {"record": record.model_dump(mode="json"), "files": files}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def pack_run_folder(run_dir: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    """The run folder's regular files by name, and what was skipped with why.

    Never follows a link the notebook made: each entry is `lstat`ed, opened with
    `O_NOFOLLOW | O_NONBLOCK` (a FIFO cannot block the worker) and its `fstat` must be
    the same regular file. Unreadable entries are skipped, never raised.
    """
    files: dict[str, bytes] = {}
    skipped: dict[str, str] = {}
    total = 0
    with os.scandir(run_dir) as entries:
        names = sorted(entry.name for entry in entries)
    for name in names:
        try:
            content = _read_regular(run_dir / name, MAX_FILE_BYTES)
        except _Skip as why:
            skipped[name] = str(why)
            continue
        if total + len(content) > MAX_RUN_BYTES:
            skipped[name] = f"the run folder's files pass {MAX_RUN_BYTES} bytes"
            continue
        total += len(content)
        files[name] = content
    return files, skipped


class _Skip(Exception):
    """Why a run folder entry is not copied."""


def _read_regular(path: Path, limit: int) -> bytes:
    """The bytes of `path` if it is a regular file (not a link) of at most `limit` bytes."""
    try:
        before = os.lstat(path)
    except OSError as exc:
        raise _Skip(f"cannot be read ({exc.strerror})") from exc
    if not stat.S_ISREG(before.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(before.st_mode) else "not a regular file"
        raise _Skip(kind)
    if before.st_size > limit:
        raise _Skip(f"larger than {limit} bytes")
    if before.st_nlink > 1:  # another name for a file elsewhere, not one the run made
        raise _Skip("a hard link")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _Skip(f"cannot be read ({exc.strerror})") from exc
    with os.fdopen(fd, "rb") as handle:
        now = os.fstat(handle.fileno())
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (
            before.st_dev,
            before.st_ino,
        ):
            raise _Skip("replaced while being read")
        content = handle.read(limit + 1)
    if len(content) > limit:
        raise _Skip(f"larger than {limit} bytes")
    return content


def land(result: dict[str, Any], runs_dir: Path) -> RunRecord:
    """Write a worker's run folder under `runs_dir` and point the record at it."""
    record = RunRecord.model_validate(result["record"])
    if Path(record.run_id).name != record.run_id or record.run_id in ("", ".", ".."):
        raise ValueError(f"run id {record.run_id!r} is not a folder name")
    run_dir = (runs_dir / record.run_id).resolve()
    run_dir.mkdir(parents=True, exist_ok=False)
    for name, content in result["files"].items():
        # A fresh folder, plain names, files created here: nothing to follow.
        base = Path(name).name
        if base in ("", ".", "..") or not isinstance(content, bytes):
            continue
        fd = os.open(run_dir / base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
    notebook = run_dir / Path(record.notebook).name
    return record.model_copy(update={"run_dir": str(run_dir), "notebook": str(notebook)})
