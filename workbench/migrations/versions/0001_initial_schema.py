"""The store's first schema: calls, submissions, runs, metrics, reproductions, transitions,
jurors and scores.

Revision 0001, the first. Stores made before revisions existed (by `create_all`) have exactly
these tables; `workbench db upgrade` recognises them and stamps them at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("funder", sa.Text(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("registered_at", MOMENT, nullable=False),
    )
    op.create_table(
        "submissions",
        sa.Column("key", sa.String(129), primary_key=True),
        sa.Column("call_id", sa.String(64), sa.ForeignKey("calls.id"), nullable=False),
        sa.Column("submission_id", sa.String(64), nullable=False),
        sa.Column("team", sa.Text(), nullable=False),
        sa.Column("organisation", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("registered_at", MOMENT, nullable=False),
    )
    op.create_index("ix_submissions_call_id", "submissions", ["call_id"])
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column(
            "submission_key", sa.String(129), sa.ForeignKey("submissions.key"), nullable=False
        ),
        sa.Column("call_id", sa.String(64), sa.ForeignKey("calls.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", MOMENT, nullable=False),
        sa.Column("finished_at", MOMENT, nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("isolation", sa.String(16), nullable=False),
        sa.Column("input_sha256", sa.String(64), nullable=False),
        sa.Column("fingerprint_digest", sa.String(64), nullable=False),
        sa.Column("energy_kwh", sa.Float(), nullable=True),
        sa.Column("co2e_g", sa.Float(), nullable=True),
        sa.Column("energy_method", sa.String(16), nullable=True),
        sa.Column("machine_fingerprint", sa.String(16), nullable=True),
        sa.Column("record", sa.JSON(), nullable=False),
    )
    op.create_index("ix_runs_call_id", "runs", ["call_id"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_index("ix_runs_input_sha256", "runs", ["input_sha256"])
    op.create_index("ix_runs_submission_started", "runs", ["submission_key", "started_at"])
    op.create_table(
        "metrics",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.UniqueConstraint("run_id", "name"),
    )
    op.create_index("ix_metrics_run_id", "metrics", ["run_id"])
    op.create_table(
        "reproductions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "submission_key", sa.String(129), sa.ForeignKey("submissions.key"), nullable=False
        ),
        sa.Column("reference_run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
    )
    op.create_index("ix_reproductions_submission_key", "reproductions", ["submission_key"])
    op.create_table(
        "transitions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "submission_key", sa.String(129), sa.ForeignKey("submissions.key"), nullable=False
        ),
        sa.Column("from_state", sa.String(16), nullable=False),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
    )
    op.create_index("ix_transitions_submission_key", "transitions", ["submission_key"])
    op.create_table(
        "jurors",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(64), sa.ForeignKey("calls.id"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("conflicts", sa.JSON(), nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.UniqueConstraint("call_id", "name"),
    )
    op.create_index("ix_jurors_call_id", "jurors", ["call_id"])
    op.create_table(
        "scores",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("juror_id", sa.Integer(), sa.ForeignKey("jurors.id"), nullable=False),
        sa.Column(
            "submission_key", sa.String(129), sa.ForeignKey("submissions.key"), nullable=False
        ),
        sa.Column("criterion_values", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("weighted_total", sa.Float(), nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
    )
    op.create_index("ix_scores_juror_id", "scores", ["juror_id"])
    op.create_index("ix_scores_submission_juror", "scores", ["submission_key", "juror_id"])


def downgrade() -> None:
    for table in (
        "scores",
        "jurors",
        "transitions",
        "reproductions",
        "metrics",
        "runs",
        "submissions",
        "calls",
    ):
        op.drop_table(table)
