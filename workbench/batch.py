"""Runs that get stored: one submission, or a whole call's, locally or on a Dask cluster.

Executors share one interface and live in a registry, like the isolation levels:

    local   N runs at once in threads of this process: imports are paid once, and each
            run still gets a fresh kernel process of its own
    dask    each run is a task on a Dask distributed cluster; the task ships the notebook,
            parameters and data, runs the sandboxed, metered execution on the worker and
            returns the record and the executed notebook; only this process writes the store

A call's `protocol.repeats` (K) runs each submission K times, each run in a fresh kernel and
stored as its own run. The runs are interleaved across submissions (every submission's first
run, then every second run, ...), so that a drift of the machine during the batch does not
favour one dossier. Repeats cost K times the runs and nothing more: the zygote and the
hardware detection are prepared once per batch. Once a submission has its K runs, they give
its reproduction verdict (`reproduction.repeats_verdict`), as `reproduce` does.

A batch is resumable: a submission whose input fingerprint already has K settled runs is
skipped unless `rerun` is asked, and one that has fewer runs only the missing repeats.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from workbench import environments
from workbench.errors import InvalidError, NotFoundError, Problem, WorkbenchError
from workbench.runner.records import KernelEnvironment, RunRecord, coordinator_id, new_run_id
from workbench.workspace import Workspace

if TYPE_CHECKING:
    from workbench.calls import Call
    from workbench.reproduction import Reproduction
    from workbench.store import Store
    from workbench.submissions import Submission


def run_submission(
    workspace: Workspace,
    ref: str | Path,
    *,
    isolation: str | None = None,
    kernel_name: str = "python3",
    on_note: Callable[[str], None] | None = None,
) -> RunRecord:
    """Validate, execute and store one submission; return its finished run record.

    Nothing is written to the store unless the submission is valid. The questionnaire
    need not be answered to run (it is to hand in); `on_note` hears what is still missing.
    The run is stored as `running` before its kernel starts, and moved to its final
    status at the end.
    """
    from workbench.runner.execute import execute_submission
    from workbench.store import open_store
    from workbench.submissions import SUBMISSION_FILE, submission_notes, validate_submission

    folder = workspace.submission_dir(ref)
    try:
        sub, call = validate_submission(folder, workspace, answers=False)
    except (MemoryError, RecursionError) as exc:  # never a traceback for a team's input
        raise InvalidError.single(folder / SUBMISSION_FILE, "-", _unreadable(exc)) from exc
    if on_note is not None:
        for note in submission_notes(folder, sub, call):
            on_note(note)
    check_isolation(isolation or call.protocol.isolation)
    coordinator = coordinator_id()
    environment = environments.of_call(workspace, call)
    with open_store(workspace.db_url) as store:
        store.register(call, sub)
        record = execute_submission(
            folder,
            sub,
            call,
            workspace.runs_dir,
            isolation=isolation,
            kernel_name=kernel_name,
            on_start=lambda r: store.start_run(r.model_copy(update={"coordinator": coordinator})),
            environment=environment,
        )
        store.finish_run(record)
    return record


def _unreadable(exc: BaseException) -> str:
    return f"cannot be read within the workbench's limits ({type(exc).__name__})"


def check_isolation(level: str) -> None:
    """Fail closed, before anything is stored: an unknown or unavailable level runs nothing."""
    from workbench.runner.isolation import isolation_levels

    isolation_levels.get(level).check()


@dataclass(frozen=True)
class Job:
    """One submission to run, with everything an executor needs."""

    folder: Path
    submission: Submission
    call: Call
    run_id: str
    isolation: str | None
    kernel_name: str
    repeat: int = 1  # which of the submission's `repeats` runs this is, from 1
    repeats: int = 1
    input_sha256: str = ""
    environment: KernelEnvironment | None = None  # the call's; None: the workbench's own
    environment_wire: dict[str, Any] | None = None  # how a worker gets the same one

    @property
    def label(self) -> str:
        """The submission, and which run of it this is when it has repeats: `a run 2/3`."""
        if self.repeats < 2:
            return self.submission.id
        return f"{self.submission.id} run {self.repeat}/{self.repeats}"


@dataclass
class BatchPlan:
    """What a batch will do: the jobs, and what it skips and why."""

    jobs: list[Job] = field(default_factory=list)
    invalid: list[tuple[str, list[Problem]]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def input_sha256(
    folder: Path,
    sub: Submission,
    kernel_name: str,
    environment: KernelEnvironment | None = None,
) -> str:
    """The input fingerprint a run of this submission will have (notebook, parameters, data,
    the call's environment's lock)."""
    from workbench.runner.execute import fingerprint

    data = {item.path: item.sha256 for item in sub.data}
    notebook = folder / sub.notebook
    return fingerprint(notebook, sub.parameters, data, kernel_name, environment).input_sha256


def plan_batch(
    workspace: Workspace,
    store: Store,
    call_id: str,
    *,
    only: Iterable[str] = (),
    rerun: bool = False,
    isolation: str | None = None,
    kernel_name: str = "python3",
) -> BatchPlan:
    """Validate every submission of a call and decide which runs to make, interleaved.

    Each valid submission needs `protocol.repeats` settled runs of its current input; the
    jobs are its missing ones, in rounds: every submission's next run before anyone's
    following one.
    """
    from workbench.dossiers import state_of
    from workbench.submissions import SUBMISSION_FILE, validate_submission

    call = workspace.call(call_id)
    environment = environments.of_call(workspace, call)
    wire_env = environments.worker_wire(workspace, call) if environment is not None else None
    wanted = set(only)
    folders = workspace.submission_dirs(call_id)
    unknown = wanted - {f.name for f in folders}
    if unknown:
        raise NotFoundError(f"call {call_id!r} has no submission {', '.join(sorted(unknown))}")
    repeats = call.protocol.repeats
    settled = {} if rerun else store.settled_counts(call_id)
    states = store.current_states(call_id)  # once for the call, not once per dossier
    plan = BatchPlan()
    pending: list[list[Job]] = []
    for folder in folders:
        if wanted and folder.name not in wanted:
            continue
        key = f"{call_id}/{folder.name}"
        # One bad submission is its own problem: whatever reading it raises, the batch goes on.
        where = str(folder / SUBMISSION_FILE)
        try:
            sub, _ = validate_submission(folder, workspace)
            sha = input_sha256(folder, sub, kernel_name, environment)
        except InvalidError as exc:
            plan.invalid.append((key, exc.problems))
            continue
        except WorkbenchError as exc:
            plan.invalid.append((key, [Problem(where, "-", str(exc))]))
            continue
        except (OSError, MemoryError, RecursionError, ValueError) as exc:
            plan.invalid.append((key, [Problem(where, "-", _unreadable(exc))]))
            continue
        # The audit log holds the state; an older submission.yaml's `state:` key is read once.
        if state_of(states.get(key), sub.state) == "draft":
            plan.skipped.append((key, "draft: not submitted yet"))
            continue
        done = settled.get((key, sha), 0)
        if done >= repeats:
            times = "" if repeats == 1 else f" {done} times"
            plan.skipped.append((key, f"already run{times} with the same input (use --rerun)"))
            continue
        store.register(call, sub)
        pending.append(
            [
                Job(
                    folder,
                    sub,
                    call,
                    new_run_id(),
                    isolation,
                    kernel_name,
                    n,
                    repeats,
                    sha,
                    environment,
                    wire_env,
                )
                for n in range(done + 1, repeats + 1)
            ]
        )
    plan.jobs = interleave(pending)
    return plan


def interleave(queues: list[list[Job]]) -> list[Job]:
    """Round-robin: the first job of every queue, then the second of every queue, ..."""
    longest = max((len(queue) for queue in queues), default=0)
    return [queue[i] for i in range(longest) for queue in queues if i < len(queue)]


# `started` gets the record in `running` state when the run starts here (local), None when
# it starts elsewhere (a cluster worker) and only its finished record comes back.
Started = Callable[[Job, RunRecord | None], None]
Finished = Callable[[Job, RunRecord], None]
# A job whose execution raised instead of giving a record (a runner fault, a lost worker).
Failed = Callable[[Job, Exception], None]


class Executor:
    """Base class: runs jobs and reports each start and each finished record.

    `run` owns the shared steps (storing a finished record is the caller's); a subclass
    implements `_execute`, yielding (job, record) as runs finish, in any order.
    """

    name: ClassVar[str]

    def __init__(self, workers: int | None = None, scheduler: str | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.scheduler = scheduler

    def prepare(self, environment: KernelEnvironment | None = None) -> None:
        """Called before the batch is planned: start what can get ready meanwhile."""

    def run(
        self,
        jobs: list[Job],
        runs_dir: Path,
        started: Started,
        finished: Finished,
        failed: Failed | None = None,
    ) -> None:
        for job, result in self._execute(jobs, runs_dir, started):
            if isinstance(result, RunRecord):
                finished(job, result)
            elif failed is not None:
                failed(job, result)
            else:
                raise result

    def _execute(
        self, jobs: list[Job], runs_dir: Path, started: Started
    ) -> Iterator[tuple[Job, RunRecord | Exception]]:
        """Yield each job with its record, or with what its execution raised."""
        raise NotImplementedError


class LocalExecutor(Executor):
    """N notebooks at once from this process, each in a fresh kernel.

    Up to N more kernels start meanwhile: a run's kernel is started while other cells
    run, and its cells wait for one of the N slots (`execute.RunControl`). Starting a
    kernel is mostly waiting, which this hides behind the notebooks' own work.
    """

    name = "local"

    def prepare(self, environment: KernelEnvironment | None = None) -> None:
        import threading

        from workbench.runner import zygote

        if zygote.enabled():
            # Its imports run in its own process, beside the planning; a call's environment
            # has a zygote of its own.
            zygote.shared_zygote(environment.interpreter if environment else None)
        # Hardware detection takes about a second, mostly waiting: not on the first run's clock.
        threading.Thread(target=_detect_hardware, name="workbench-meter-setup", daemon=True).start()

    def _execute(
        self, jobs: list[Job], runs_dir: Path, started: Started
    ) -> Iterator[tuple[Job, RunRecord | Exception]]:
        import threading
        from concurrent.futures import ThreadPoolExecutor, as_completed

        from workbench.runner.execute import execute_submission

        slot = threading.BoundedSemaphore(self.workers)
        # Runs start in the plan's order (its interleaving is what makes repeats fair):
        # each waits for the previous one's start, which comes before its kernel's.
        starts = [threading.Event() for _ in jobs]

        def one(index: int, job: Job) -> RunRecord:
            if index:
                starts[index - 1].wait()

            def on_start(record: RunRecord) -> None:
                try:
                    started(job, record)
                finally:
                    starts[index].set()

            try:
                return execute_submission(
                    job.folder,
                    job.submission,
                    job.call,
                    runs_dir,
                    isolation=job.isolation,
                    kernel_name=job.kernel_name,
                    run_id=job.run_id,
                    on_start=on_start,
                    slot=slot,
                    environment=job.environment,
                )
            finally:
                starts[index].set()  # also when it failed before starting

        threads = 2 * self.workers
        with ThreadPoolExecutor(threads, thread_name_prefix="workbench-run") as pool:
            futures = {pool.submit(one, i, job): job for i, job in enumerate(jobs)}
            for future in as_completed(futures):
                exc = future.exception()
                yield futures[future], future.result() if exc is None else _as_error(exc)


def _detect_hardware() -> None:
    from workbench.runner.metering import MeteringUnavailable, process_meter

    with contextlib.suppress(MeteringUnavailable):
        process_meter()


class DaskExecutor(Executor):
    """Each run is a task on a Dask distributed cluster; no shared filesystem is assumed."""

    name = "dask"

    def _execute(
        self, jobs: list[Job], runs_dir: Path, started: Started
    ) -> Iterator[tuple[Job, RunRecord | Exception]]:
        try:
            from distributed import Client, as_completed
        except ImportError as exc:
            raise NotFoundError(
                "running on a cluster needs Dask distributed: pip install 'workbench[dask]'"
            ) from exc
        from workbench.errors import ExecutionError
        from workbench.runner import wire

        try:
            client = Client(self.scheduler, timeout=30)
        except (OSError, TimeoutError) as exc:
            raise ExecutionError(
                f"cannot reach the Dask scheduler at {self.scheduler}: {exc}"
            ) from exc
        try:
            _check_workers(client, {job.isolation or job.call.protocol.isolation for job in jobs})
            _check_worker_environments(client, [job.environment_wire for job in jobs])
            futures = {}
            for job in jobs:  # submitted in the plan's order, which Dask's priorities keep
                payload = wire.ship(
                    job.folder,
                    job.submission,
                    job.call,
                    run_id=job.run_id,
                    isolation=job.isolation,
                    kernel_name=job.kernel_name,
                    environment=job.environment_wire,
                )
                future = client.submit(wire.remote_execute, payload, key=f"workbench-{job.run_id}")
                futures[future] = job
                started(job, None)
            for future in as_completed(futures):
                job = futures[future]
                try:
                    yield job, wire.land(future.result(), runs_dir)
                except Exception as exc:  # that task's failure, not the batch's
                    yield job, exc
        finally:
            client.close()


def _as_error(exc: BaseException) -> Exception:
    if isinstance(exc, Exception):
        return exc
    raise exc  # KeyboardInterrupt and the like stop the batch


def worker_isolation_failures(levels: list[str]) -> dict[str, str]:
    """Runs on a worker: why each isolation level cannot be provided there (empty: all can)."""
    from workbench.errors import WorkbenchError

    failures = {}
    for level in levels:
        try:
            check_isolation(level)
        except WorkbenchError as exc:
            failures[level] = str(exc)
    return failures


def _check_workers(client: Any, levels: set[str]) -> None:
    """Refuse a batch, before any task, when a worker cannot isolate runs as asked.

    Each worker checks for itself (a worker without bubblewrap cannot run `sandbox`);
    without this, such a worker would fail every task it is given. Workers that join
    the cluster once the batch has started are not checked.
    """
    from workbench.errors import SandboxError

    answers = client.run(worker_isolation_failures, sorted(levels))
    refused = [
        f"worker {address}: {message}"
        for address, failures in sorted(answers.items())
        for message in failures.values()
    ]
    if refused:
        raise SandboxError("; ".join(refused))


def _check_worker_environments(client: Any, wires: list[dict[str, Any] | None]) -> None:
    """Refuse a batch, before any task, when a worker's build of the call's environment
    has another lock than this one's (each worker builds it once, from this lock)."""
    from workbench.errors import ExecutionError
    from workbench.runner.wire import worker_environment_failure

    distinct = {wire["lock_sha256"]: wire for wire in wires if wire is not None}
    for wire in distinct.values():
        answers = client.run(worker_environment_failure, wire)
        refused = [
            f"worker {address}: {message}"
            for address, message in sorted(answers.items())
            if message is not None
        ]
        if refused:
            raise ExecutionError("; ".join(refused) + "; nothing ran")


class ExecutorRegistry:
    def __init__(self) -> None:
        self._executors: dict[str, type[Executor]] = {}

    def register(self, cls: type[Executor]) -> None:
        self._executors[cls.name] = cls

    def get(self, name: str) -> type[Executor]:
        try:
            return self._executors[name]
        except KeyError:
            known = ", ".join(sorted(self._executors))
            raise NotFoundError(f"unknown executor {name!r} (known: {known})") from None


executors = ExecutorRegistry()
executors.register(LocalExecutor)
executors.register(DaskExecutor)


@dataclass
class BatchReport:
    plan: BatchPlan
    records: list[RunRecord] = field(default_factory=list)
    # The reproduction verdicts of the submissions whose repeats this batch completed.
    reproductions: list[Reproduction] = field(default_factory=list)
    # Jobs whose execution raised (label, reason): stored as `error` when they had started.
    failed: list[tuple[str, str]] = field(default_factory=list)
    # Runs found `running` with their coordinator gone, marked `abandoned` before planning.
    abandoned: list[str] = field(default_factory=list)


def run_batch(
    workspace: Workspace,
    call_id: str,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    rerun: bool = False,
    only: Iterable[str] = (),
    isolation: str | None = None,
    kernel_name: str = "python3",
    on_plan: Callable[[BatchPlan], None] | None = None,
    on_start: Started | None = None,
    on_finish: Finished | None = None,
) -> BatchReport:
    """Validate a call's submissions, run the valid ones that need it, store every run.

    A run is stored as `running` when it starts (locally) and finished atomically, so a
    batch killed at any point leaves nothing that looks finished but is not. Once the last
    of a submission's jobs is stored and the call asks for repeats, its verdict is stored.
    """
    call = workspace.call(call_id)
    check_isolation(isolation or call.protocol.isolation)
    executor = executors.get("dask" if scheduler else "local")(workers, scheduler)
    executor.prepare(environments.of_call(workspace, call))
    from workbench.reproduction import repeats_verdict
    from workbench.store import open_store

    coordinator = coordinator_id()
    with open_store(workspace.db_url) as store:
        abandoned = store.mark_abandoned()
        plan = plan_batch(
            workspace,
            store,
            call_id,
            only=only,
            rerun=rerun,
            isolation=isolation,
            kernel_name=kernel_name,
        )
        if on_plan is not None:
            on_plan(plan)
        report = BatchReport(plan, abandoned=abandoned)
        left = Counter(job.submission.key for job in plan.jobs)
        running: dict[str, RunRecord] = {}

        def started(job: Job, record: RunRecord | None) -> None:
            if record is not None:
                record = record.model_copy(update={"coordinator": coordinator})
                store.start_run(record)  # before the kernel starts: a crash never looks finished
                running[record.run_id] = record
            if on_start is not None:
                on_start(job, record)

        def failed(job: Job, exc: Exception) -> None:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            report.failed.append((job.label, reason.rstrip(": ")))
            start = running.pop(job.run_id, None)
            if start is not None:  # stored `running`: it ends as a runner fault, run again later
                update = {
                    "status": "error",
                    "message": reason,
                    "finished_at": dt.datetime.now(dt.UTC),
                }
                store.finish_run(start.model_copy(update=update))

        def finished(job: Job, record: RunRecord) -> None:
            running.pop(record.run_id, None)
            if scheduler is None:
                store.finish_run(record)
            else:
                store.add_run(record)  # ran on a worker: stored in one transaction
            report.records.append(record)
            if on_finish is not None:
                on_finish(job, record)
            left[job.submission.key] -= 1
            if left[job.submission.key] == 0 and job.repeats >= 2:
                verdict = repeats_verdict(
                    store, job.submission.key, job.input_sha256, job.call.protocol
                )
                if verdict is not None:
                    report.reproductions.append(verdict)

        executor.run(plan.jobs, workspace.runs_dir, started, finished, failed)
    return report
