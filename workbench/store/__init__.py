"""The store: every query the rest of the workbench makes, over the tables of `tables`.

SQLite (WAL mode) by default; any SQLAlchemy URL, PostgreSQL included, through `--db`
or `WORKBENCH_DB`. Runs are appended: a run row changes only through its own status
transition from `running` to a final status, once. Scores, reproductions and dossier
transitions are appended, never updated. Other modules call `Store`'s named methods, which
return plain values, detached ORM rows or small models; none of them writes SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import (
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from workbench.errors import StoreError
from workbench.store.jury import AssignmentChange, JuryQueries
from workbench.tables import (
    AssignmentRow,
    Base,
    CallRow,
    JurorRow,
    JurorTokenRow,
    MetricRow,
    RapporteurRow,
    ReproductionRow,
    RunRow,
    ScoreRow,
    SubmissionRow,
    SynthesisRow,
    TransitionRow,
    _utcnow,
)

__all__ = [  # the tables are re-exported: callers name them through the store
    "AssignmentChange",
    "AssignmentRow",
    "Base",
    "CallRow",
    "JurorRow",
    "JurorTokenRow",
    "MetricRow",
    "RapporteurRow",
    "ReproductionRow",
    "RunEnergy",
    "RunRow",
    "ScoreRow",
    "Store",
    "SubmissionRow",
    "SynthesisRow",
    "TransitionRow",
    "open_engine",
    "open_store",
]

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from workbench.calls import Call
    from workbench.dossiers import Transition
    from workbench.runner.records import RunRecord
    from workbench.submissions import Submission


class RunEnergy(NamedTuple):
    """A run's indexed energy columns (None when its energy was not measured)."""

    run_id: str
    submission_key: str
    energy_kwh: float | None
    co2e_g: float | None
    method: str | None
    machine_fingerprint: str | None


def _transition(row: TransitionRow) -> Transition:
    from workbench.dossiers import Transition

    at = row.created_at
    return Transition(
        submission=row.submission_key,
        from_state=row.from_state,
        to_state=row.to_state,
        actor=row.actor,
        reason=row.reason,
        # SQLite gives the stored UTC time back without its zone; PostgreSQL keeps it.
        at=at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC),
    )


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE: a writer takes the lock up
    # front and waits for it, instead of failing when a read is upgraded to a write.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store(JuryQueries):
    """A handle on the database; every public method is one short transaction.

    Use it as a context manager (`with open_store(url) as store:`): leaving the block
    disposes of the engine and its connections.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                with session.begin():
                    yield session
            except SQLAlchemyError as exc:
                raise StoreError(f"{self.engine.url.render_as_string()}: {exc}") from exc

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Calls and submissions are registered (refreshed) whenever they are run.
    def register(self, call: Call, sub: Submission | None = None) -> None:
        with self.session() as s:
            s.merge(
                CallRow(
                    id=call.id,
                    title=call.title.fr,
                    funder=call.funder,
                    document=call.model_dump(mode="json"),
                )
            )
            if sub is not None:
                s.merge(
                    SubmissionRow(
                        key=sub.key,
                        call_id=sub.call,
                        submission_id=sub.id,
                        team=sub.team,
                        organisation=sub.organisation,
                        title=sub.title,
                        template=sub.template,
                        document=sub.model_dump(mode="json"),
                    )
                )

    def submission(self, key: str) -> SubmissionRow | None:
        with self.session() as s:
            return s.get(SubmissionRow, key)

    def submission_documents(self, call_id: str) -> dict[str, dict[str, Any]]:
        """Every registered submission's document (title, answers...), by key, in one query."""
        query = select(SubmissionRow.key, SubmissionRow.document).where(
            SubmissionRow.call_id == call_id
        )
        with self.session() as s:
            return {key: document for key, document in s.execute(query)}

    def submission_keys(self, call_id: str) -> set[str]:
        """The keys of every registered submission of a call."""
        query = select(SubmissionRow.key).where(SubmissionRow.call_id == call_id)
        with self.session() as s:
            return set(s.scalars(query))

    def start_run(self, record: RunRecord) -> None:
        """Append a run in `running` state."""
        with self.session() as s:
            if s.get(RunRow, record.run_id) is not None:
                raise StoreError(f"run {record.run_id} already exists")
            s.add(
                RunRow(
                    run_id=record.run_id,
                    submission_key=record.submission,
                    call_id=record.call,
                    status=record.status,
                    started_at=record.started_at,
                    finished_at=record.finished_at,
                    duration_s=record.duration_s,
                    isolation=record.isolation,
                    input_sha256=record.fingerprint.input_sha256,
                    fingerprint_digest=record.fingerprint.digest,
                    record=record.model_dump(mode="json"),
                )
            )

    def finish_run(self, record: RunRecord) -> None:
        """Move a `running` run to its final status and add its metrics, atomically."""
        if record.status == "running":
            raise StoreError(f"run {record.run_id}: cannot finish with status 'running'")
        with self.session() as s:
            row = s.get(RunRow, record.run_id, with_for_update=True)
            if row is None:
                raise StoreError(f"run {record.run_id} was never started")
            if row.status != "running":
                raise StoreError(
                    f"run {record.run_id} is already {row.status}; runs are never rewritten"
                )
            row.status = record.status
            row.finished_at = record.finished_at
            row.duration_s = record.duration_s
            row.record = record.model_dump(mode="json")
            if record.energy is not None and record.energy.measured:
                row.energy_kwh = record.energy.total_kwh
                row.co2e_g = record.energy.co2e_g
                row.energy_method = record.energy.method
                row.machine_fingerprint = record.energy.machine_fingerprint
            for name, value in sorted(record.metrics.items()):
                s.add(MetricRow(run_id=record.run_id, name=name, value=value))

    def mark_abandoned(self, at: dt.datetime | None = None) -> list[str]:
        """Mark `abandoned` (finished at `at`) the `running` runs whose coordinator is gone.

        Gone means a coordinator of this machine whose process has ended
        (`records.coordinator_gone`): a run that another live batch is executing, one
        started on another machine, or one whose record names no coordinator is left as
        it is. Returns the run ids marked, in one transaction.
        """
        from workbench.runner.records import RunRecord, coordinator_gone

        at = at or dt.datetime.now(dt.UTC)
        marked = []
        query = select(RunRow).where(RunRow.status == "running").with_for_update()
        with self.session() as s:
            for row in s.scalars(query):
                record = RunRecord.model_validate(row.record)
                if not coordinator_gone(record.coordinator):
                    continue
                message = f"its coordinator ({record.coordinator}) ended before it finished"
                record = record.model_copy(
                    update={"status": "abandoned", "finished_at": at, "message": message}
                )
                row.status = record.status
                row.finished_at = at
                row.record = record.model_dump(mode="json")
                marked.append(row.run_id)
        return marked

    def add_run(self, record: RunRecord) -> None:
        """Store a run that already finished elsewhere (a worker), in one go."""
        self.start_run(record.model_copy(update={"status": "running"}))
        self.finish_run(record)

    def add_reproduction(self, result: dict[str, Any]) -> None:
        with self.session() as s:
            s.add(
                ReproductionRow(
                    submission_key=result["submission"],
                    reference_run_id=result["reference_run_id"],
                    verdict=result["verdict"],
                    result=result,
                )
            )

    def latest_reproductions(self, call_id: str) -> dict[str, dict[str, Any]]:
        """Each submission's latest reproduction result, by submission key."""
        query = (
            select(ReproductionRow)
            .join(SubmissionRow, SubmissionRow.key == ReproductionRow.submission_key)
            .where(SubmissionRow.call_id == call_id)
            .order_by(ReproductionRow.id)
        )
        with self.session() as s:
            return {row.submission_key: row.result for row in s.scalars(query)}

    def run(self, run_id: str) -> RunRow | None:
        with self.session() as s:
            return s.get(RunRow, run_id)

    def runs(self, submission_key: str | None = None, call_id: str | None = None) -> list[RunRow]:
        query = select(RunRow).order_by(RunRow.started_at, RunRow.run_id)
        if submission_key:
            query = query.where(RunRow.submission_key == submission_key)
        if call_id:
            query = query.where(RunRow.call_id == call_id)
        with self.session() as s:
            return list(s.scalars(query))

    def run_energies(self, call_id: str) -> list[RunEnergy]:
        """Every run of a call, reruns included, by start: only the indexed energy columns."""
        query = (
            select(
                RunRow.run_id,
                RunRow.submission_key,
                RunRow.energy_kwh,
                RunRow.co2e_g,
                RunRow.energy_method,
                RunRow.machine_fingerprint,
            )
            .where(RunRow.call_id == call_id)
            .order_by(RunRow.started_at, RunRow.run_id)
        )
        with self.session() as s:
            return [RunEnergy(*row) for row in s.execute(query)]

    def latest_runs(self, call_id: str) -> list[tuple[SubmissionRow, RunRow | None]]:
        """Each registered submission of a call with its most recent run (None if never run)."""
        latest = (
            select(RunRow.submission_key, func.max(RunRow.started_at).label("started_at"))
            .where(RunRow.call_id == call_id)
            .group_by(RunRow.submission_key)
            .subquery()
        )
        query = (
            select(SubmissionRow, RunRow)
            .outerjoin(latest, latest.c.submission_key == SubmissionRow.key)
            .outerjoin(
                RunRow,
                (RunRow.submission_key == latest.c.submission_key)
                & (RunRow.started_at == latest.c.started_at),
            )
            .where(SubmissionRow.call_id == call_id)
            .order_by(SubmissionRow.key)
        )
        with self.session() as s:
            # Ordered by run id, so when two runs share a start time the later id wins.
            rows = {sub.key: (sub, run) for sub, run in s.execute(query.order_by(RunRow.run_id))}
            return list(rows.values())

    def current_states(self, call_id: str) -> dict[str, str]:
        """Each submission's latest state in the audit log, for those that have one."""
        query = (
            select(TransitionRow.submission_key, TransitionRow.to_state)
            .join(SubmissionRow, SubmissionRow.key == TransitionRow.submission_key)
            .where(SubmissionRow.call_id == call_id)
            .order_by(TransitionRow.id)
        )
        with self.session() as s:
            return {key: state for key, state in s.execute(query)}  # later rows win

    def dossier_states(self, call_id: str) -> dict[str, str]:
        """Every registered submission's state (see `dossiers.state_of`), in two statements."""
        from workbench.dossiers import state_of

        logged = self.current_states(call_id)
        query = select(SubmissionRow.key, SubmissionRow.document).where(
            SubmissionRow.call_id == call_id
        )
        with self.session() as s:
            return {
                key: state_of(logged.get(key), document.get("state"))
                for key, document in s.execute(query)
            }

    def current_state(self, submission_key: str) -> str | None:
        """A submission's latest state in the audit log, None when it has none."""
        query = (
            select(TransitionRow.to_state)
            .where(TransitionRow.submission_key == submission_key)
            .order_by(TransitionRow.id.desc())
            .limit(1)
        )
        with self.session() as s:
            return s.scalar(query)

    def transitions(
        self, call_id: str | None = None, submission_key: str | None = None
    ) -> list[Transition]:
        """The audit log of a call's (or one submission's) dossiers, oldest first."""
        query = select(TransitionRow).order_by(TransitionRow.id)
        if call_id:
            query = query.join(SubmissionRow, SubmissionRow.key == TransitionRow.submission_key)
            query = query.where(SubmissionRow.call_id == call_id)
        if submission_key:
            query = query.where(TransitionRow.submission_key == submission_key)
        with self.session() as s:
            return [_transition(row) for row in s.scalars(query)]

    def append_transition(
        self,
        submission_key: str,
        to_state: str,
        *,
        actor: str,
        reason: str,
        declared: str,
        check: Callable[[str], None],
        at: dt.datetime | None = None,
    ) -> Transition:
        """Append a change of state, read and written in one transaction.

        `check(from_state)` runs inside the transaction, on the latest logged state (else
        `declared`), and raises to refuse: two officials deciding at once cannot both move
        the dossier from the same state.
        """
        with self.session() as s:
            # Locking the submission's row queues concurrent decisions on PostgreSQL;
            # SQLite's BEGIN IMMEDIATE already serialises the whole transaction.
            if s.get(SubmissionRow, submission_key, with_for_update=True) is None:
                raise StoreError(f"submission {submission_key} is not registered")
            last = s.scalars(
                select(TransitionRow.to_state)
                .where(TransitionRow.submission_key == submission_key)
                .order_by(TransitionRow.id.desc())
                .limit(1)
            ).first()
            from_state = last or declared
            check(from_state)
            row = TransitionRow(
                submission_key=submission_key,
                from_state=from_state,
                to_state=to_state,
                actor=actor,
                reason=reason,
                created_at=at or _utcnow(),
            )
            s.add(row)
            s.flush()
            return _transition(row)

    def jury_means(self, call_id: str) -> dict[str, tuple[int, float]]:
        """Per submission: how many jurors scored it, and the mean of their latest totals."""
        latest: dict[str, dict[int, float]] = {}
        for row in self.scores(call_id=call_id):  # in saving order: later rows win
            latest.setdefault(row.submission_key, {})[row.juror_id] = row.weighted_total
        return {
            key: (len(totals), sum(totals.values()) / len(totals)) for key, totals in latest.items()
        }

    def count(self, model: type[Base]) -> int:
        with self.session() as s:
            return s.scalar(select(func.count()).select_from(model)) or 0

    # Repeated runs
    def settled_counts(self, call_id: str) -> dict[tuple[str, str], int]:
        """How many settled runs each (submission, input fingerprint) pair of a call has."""
        from workbench.runner.records import SETTLED_STATUSES

        query = (
            select(RunRow.submission_key, RunRow.input_sha256, func.count())
            .where(RunRow.call_id == call_id)
            .where(RunRow.status.in_(SETTLED_STATUSES))
            .group_by(RunRow.submission_key, RunRow.input_sha256)
        )
        with self.session() as s:
            return {(key, sha): count for key, sha, count in s.execute(query)}

    def latest_input_runs(self, call_id: str) -> list[tuple[SubmissionRow, list[RunRow]]]:
        """Each registered submission of a call with every run of its latest run's input.

        In one statement (and the metrics' one load): the runs are in start order, so the
        last is the latest run; a submission never run has none.
        """
        latest = (
            select(RunRow.submission_key, func.max(RunRow.started_at).label("started_at"))
            .where(RunRow.call_id == call_id)
            .group_by(RunRow.submission_key)
            .subquery()
        )
        head = (
            select(RunRow.submission_key, RunRow.input_sha256)
            .join(
                latest,
                (latest.c.submission_key == RunRow.submission_key)
                & (latest.c.started_at == RunRow.started_at),
            )
            .subquery()
        )
        query = (
            select(SubmissionRow, RunRow)
            .outerjoin(head, head.c.submission_key == SubmissionRow.key)
            .outerjoin(
                RunRow,
                (RunRow.submission_key == head.c.submission_key)
                & (RunRow.input_sha256 == head.c.input_sha256),
            )
            .where(SubmissionRow.call_id == call_id)
            .order_by(SubmissionRow.key, RunRow.started_at, RunRow.run_id)
        )
        grouped: dict[str, tuple[SubmissionRow, dict[str, RunRow]]] = {}
        with self.session() as s:
            for sub, run in s.execute(query):
                _, by_id = grouped.setdefault(sub.key, (sub, {}))
                if run is not None:
                    by_id[run.run_id] = run  # two latest runs at one instant: both inputs
        result = []
        for sub, by_id in grouped.values():
            runs = list(by_id.values())
            if runs:  # when two inputs tie, the later run id is the latest (as `latest_runs`)
                last = runs[-1].input_sha256
                runs = [r for r in runs if r.input_sha256 == last]
            result.append((sub, runs))
        return result


def open_store(url: str, *, create: bool = True) -> Store:
    """Open the store at a SQLAlchemy URL; by default an empty one is created at the code's
    schema revision. A store at another revision is refused (`workbench db upgrade`)."""
    from workbench.migrations import check_store

    engine = open_engine(url)
    shown = engine.url.render_as_string()
    try:
        check_store(engine, shown, create=create)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(f"{shown}: cannot open the store: {exc}") from exc
    except StoreError:
        engine.dispose()
        raise
    return Store(engine)


def open_engine(url: str) -> Engine:
    """The engine for a store URL, with SQLite's pragmas; it does not connect yet."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    try:
        engine = create_engine(url, **kwargs)
    except SQLAlchemyError as exc:
        raise StoreError(f"{url}: cannot open the store: {exc}") from exc
    except ModuleNotFoundError as exc:
        raise StoreError(f"{url}: the database driver is not installed ({exc.name})") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    return engine
