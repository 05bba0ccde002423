"""How a run ended: its status, its error and the message shown, from what the runner saw.

Only the kernel's real ends become a team's status: a cell error (`failed`), the kernel
dying (`kernel_died`), a time limit (`timed_out`), the run's memory limit (`out_of_memory`:
its cgroup's OOM killer ended the kernel or a child), an early stop (`incomplete`). Anything
else that went wrong is the runner's own fault: status `error`, never the team's.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import ExecutionError
from workbench.runner.records import RunError, Status

if TYPE_CHECKING:
    from workbench.runner.control import RunControl

EVALUE_MAX = 2000  # characters of an error's message kept in the record
MESSAGE_EVALUE_MAX = 300  # and in the one-line message


@dataclass(frozen=True)
class Outcome:
    status: Status
    error: RunError | None = None
    message: str = ""


def kernel_end(exc: BaseException) -> Status | None:
    """The status of a way the kernel can end that nbclient reports by raising, else None."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    if isinstance(exc, CellTimeoutError):
        return "timed_out"
    if isinstance(exc, DeadKernelError):
        return "kernel_died"
    return None


def is_notebook_error(exc: BaseException) -> bool:
    """papermill's report of an error the notebook raised (the details are in the notebook)."""
    from papermill.exceptions import PapermillExecutionError

    return isinstance(exc, PapermillExecutionError)


def is_runner_fault(exc: BaseException) -> bool:
    """Anything raised that is neither the notebook's error nor one of the kernel's ends."""
    return kernel_end(exc) is None and not is_notebook_error(exc)


def runner_fault(exc: BaseException, log_file: Path, what: str = "") -> ExecutionError:
    """The runner's own failure, as an `ExecutionError`; its traceback goes to the run's log."""
    with log_file.open("a", encoding="utf-8") as handle:
        handle.write(f"\n[workbench: runner fault{what}]\n")
        handle.writelines(traceback.format_exception(exc))
    fault = ExecutionError(
        f"runner fault, not the notebook's{what}: {type(exc).__name__}: {exc}"
        f" (traceback in {log_file})"
    )
    fault.__cause__ = exc
    return fault


def fault_outcome(fault: ExecutionError) -> Outcome:
    return Outcome("error", RunError(ename="ExecutionError", evalue=str(fault)), str(fault))


def team_index(cell: Any, team_nb: Any) -> int | None:
    """Index of an executed cell in the team's own notebook (before papermill's additions).

    Found by cell id; a notebook without ids (nbformat 4.4) is matched by source.
    """
    cells = team_nb.cells if team_nb is not None else []
    if cell.get("id"):
        for index, original in enumerate(cells):
            if original.get("id") == cell.get("id"):
                return index
    for index, original in enumerate(cells):
        if original.source == cell.source:
            return index
    return None


def first_error(nb: Any) -> tuple[Any, Any]:
    """The first cell with an error output, and that output (papermill reports the same)."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return cell, output
    return None, None


def _notebook_error(index: int | None, output: Any) -> Outcome:
    ename, evalue = str(output.get("ename") or "Error"), str(output.get("evalue") or "")
    error = RunError(cell_index=index, ename=ename, evalue=evalue[:EVALUE_MAX])
    if ename == "SystemExit":
        return Outcome(
            "incomplete", error, f"the notebook stopped early (SystemExit) in cell {index}"
        )
    shown = f": {evalue[:MESSAGE_EVALUE_MAX]}" if evalue else ""
    return Outcome("failed", error, f"{ename} in cell {index}{shown}")


def classify(
    nb: Any,
    team_nb: Any,
    exc: BaseException | None,
    control: RunControl,
    required: list[str],
    metrics: dict[str, float],
) -> Outcome:
    """The run's outcome, from the executed notebook and what execution raised.

    `exc` is None, papermill's notebook error or one of the kernel's ends (`kernel_end`):
    a runner fault never reaches here. Cell indices are those of the team's notebook,
    which is what the team can open.
    """
    if control.timed_out:
        return Outcome("timed_out", None, "the run exceeded the call's time limit and was killed")
    if exc is not None and kernel_end(exc) == "timed_out":
        return Outcome("timed_out", None, "the run exceeded the call's time limit")
    limits = control.containment
    if control.out_of_memory:
        # Whatever the notebook made of it (a dead kernel, a child's error, a swallowed
        # failure): the run reached its memory limit and lost a process to it.
        limit = f" of {limits.memory_mb} MB" if limits is not None else ""
        message = f"the run exceeded its memory limit{limit}; the OOM killer ended a process"
        return Outcome("out_of_memory", RunError(ename="OutOfMemory", evalue=message), message)
    if control.disk_exceeded:
        limit = f" of {limits.disk_mb} MB" if limits is not None else ""
        message = f"the run wrote more than its disk limit{limit} in its folder and was killed"
        return Outcome("kernel_died", RunError(ename="DiskLimitExceeded", evalue=message), message)
    if exc is not None and kernel_end(exc) == "kernel_died":
        message = f"the kernel died: {type(exc).__name__}: {exc}"[:500]
        return Outcome("kernel_died", RunError(ename=type(exc).__name__, evalue=str(exc)), message)
    cell, output = first_error(nb)
    if cell is not None:
        return _notebook_error(team_index(cell, team_nb), output)
    if exc is not None:
        # papermill saw an exception but the notebook holds no error output for it.
        index = getattr(exc, "cell_index", None)
        if isinstance(index, int) and 0 <= index < len(nb.cells):
            index = team_index(nb.cells[index], team_nb)
        else:
            index = None
        output = {"ename": getattr(exc, "ename", "Error"), "evalue": getattr(exc, "evalue", "")}
        return _notebook_error(index, output)
    skipped = [
        team_index(c, team_nb)
        for c in nb.cells
        if c.cell_type == "code" and c.source.strip() and c.get("execution_count") is None
    ]
    if skipped:
        shown = ", ".join(map(str, skipped[:10]))
        return Outcome("incomplete", None, f"cells not executed: {shown}")
    missing = [m for m in required if m not in metrics]
    if missing:
        return Outcome("incomplete", None, f"required metrics not recorded: {', '.join(missing)}")
    return Outcome("succeeded")
