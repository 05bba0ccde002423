"""The store's tables: SQLAlchemy declarative models, one class per table.

The schema they describe is built by the revisions in `workbench/migrations/`; a change
here comes with a new revision (the tests compare the two).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        dt.datetime: DateTime(timezone=True),
    }


class CallRow(Base):
    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    funder: Mapped[str] = mapped_column(Text)
    document: Mapped[dict[str, Any]]
    registered_at: Mapped[dt.datetime] = mapped_column(default=_utcnow)


class SubmissionRow(Base):
    __tablename__ = "submissions"

    key: Mapped[str] = mapped_column(String(129), primary_key=True)  # "call/id"
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    submission_id: Mapped[str] = mapped_column(String(64))
    team: Mapped[str] = mapped_column(Text)
    organisation: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]]
    registered_at: Mapped[dt.datetime] = mapped_column(default=_utcnow)


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_submission_started", "submission_key", "started_at"),)

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    submission_key: Mapped[str] = mapped_column(ForeignKey("submissions.key"))
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    duration_s: Mapped[float | None] = mapped_column(Float)
    isolation: Mapped[str] = mapped_column(String(16))
    input_sha256: Mapped[str] = mapped_column(String(64), index=True)
    fingerprint_digest: Mapped[str] = mapped_column(String(64))
    energy_kwh: Mapped[float | None] = mapped_column(Float)
    co2e_g: Mapped[float | None] = mapped_column(Float)
    energy_method: Mapped[str | None] = mapped_column(String(16))
    machine_fingerprint: Mapped[str | None] = mapped_column(String(16))
    record: Mapped[dict[str, Any]]

    metrics: Mapped[list[MetricRow]] = relationship(back_populates="run", lazy="selectin")


class MetricRow(Base):
    __tablename__ = "metrics"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    value: Mapped[float] = mapped_column(Float)

    run: Mapped[RunRow] = relationship(back_populates="metrics")


class ReproductionRow(Base):
    """A reproduction verdict; appended, never updated."""

    __tablename__ = "reproductions"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    submission_key: Mapped[str] = mapped_column(ForeignKey("submissions.key"), index=True)
    reference_run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"))
    verdict: Mapped[str] = mapped_column(String(16))
    result: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=_utcnow)


class TransitionRow(Base):
    """One change of a dossier's state: the audit log, appended, never updated."""

    __tablename__ = "transitions"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    submission_key: Mapped[str] = mapped_column(ForeignKey("submissions.key"), index=True)
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=_utcnow)


class JurorRow(Base):
    """A juror of one call. Only the sha256 of their personal token is stored."""

    __tablename__ = "jurors"
    __table_args__ = (UniqueConstraint("call_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    name: Mapped[str] = mapped_column(Text)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    conflicts: Mapped[list[str]] = mapped_column(JSON, default=list)  # submission keys
    created_at: Mapped[dt.datetime] = mapped_column(default=_utcnow)


class ScoreRow(Base):
    """One saved jury score; appended, never updated: a juror's latest row is their score."""

    __tablename__ = "scores"
    __table_args__ = (Index("ix_scores_submission_juror", "submission_key", "juror_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    juror_id: Mapped[int] = mapped_column(ForeignKey("jurors.id"), index=True)
    submission_key: Mapped[str] = mapped_column(ForeignKey("submissions.key"))
    values: Mapped[dict[str, Any]] = mapped_column("criterion_values", JSON)
    comment: Mapped[str] = mapped_column(Text, default="")  # the private note, for the jury
    message: Mapped[str] = mapped_column(Text, default="", server_default="")  # to the team
    weighted_total: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(default=_utcnow)


class JurorTokenRow(Base):
    """The sha256 of one of a juror's tokens; a renewed link revokes the one before."""

    __tablename__ = "juror_tokens"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    juror_id: Mapped[int] = mapped_column(ForeignKey("jurors.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=_utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class AssignmentRow(Base):
    """One change of a juror's assignment to a submission (`assigned` false: withdrawn);
    appended, the latest row per (juror, submission) is the current one."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    submission_key: Mapped[str] = mapped_column(ForeignKey("submissions.key"))
    juror_id: Mapped[int] = mapped_column(ForeignKey("jurors.id"))
    assigned: Mapped[bool] = mapped_column(Boolean)
    origin: Mapped[str] = mapped_column(String(16))  # "auto" (jury assign) or "manual"
    actor: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=_utcnow)


class RapporteurRow(Base):
    """The funder's choice of a submission's rapporteur; the latest row is the current one."""

    __tablename__ = "rapporteurs"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    submission_key: Mapped[str] = mapped_column(ForeignKey("submissions.key"))
    juror_id: Mapped[int] = mapped_column(ForeignKey("jurors.id"))
    actor: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=_utcnow)


class SynthesisRow(Base):
    """One saved synthesis by a submission's rapporteur, with a proposed decision;
    appended, the latest is the current one."""

    __tablename__ = "syntheses"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    submission_key: Mapped[str] = mapped_column(ForeignKey("submissions.key"))
    juror_id: Mapped[int] = mapped_column(ForeignKey("jurors.id"))
    text: Mapped[str] = mapped_column(Text)
    proposed_decision: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=_utcnow)
