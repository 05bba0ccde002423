"""The jury's work: assignments, rapporteurs, syntheses, renewable tokens, messages to teams.

Revision 0002. Every new table is appended to, never updated (a token's revocation time
excepted): an assignment's history is its rows, the latest row per (juror, submission)
is the current one; likewise the rapporteur of a submission and a juror's synthesis.
Each juror's existing token moves into `juror_tokens`, so old links keep working.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

MOMENT = sa.DateTime(timezone=True)


def _submission() -> sa.Column:
    return sa.Column(
        "submission_key", sa.String(129), sa.ForeignKey("submissions.key"), nullable=False
    )


def _juror() -> sa.Column:
    return sa.Column("juror_id", sa.Integer(), sa.ForeignKey("jurors.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "juror_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _juror(),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("revoked_at", MOMENT, nullable=True),
    )
    op.create_index("ix_juror_tokens_juror_id", "juror_tokens", ["juror_id"])
    op.execute(
        "INSERT INTO juror_tokens (juror_id, token_sha256, created_at) "
        "SELECT id, token_sha256, created_at FROM jurors"
    )
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(64), sa.ForeignKey("calls.id"), nullable=False),
        _submission(),
        _juror(),
        sa.Column("assigned", sa.Boolean(), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
    )
    op.create_index("ix_assignments_call_id", "assignments", ["call_id"])
    op.create_table(
        "rapporteurs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(64), sa.ForeignKey("calls.id"), nullable=False),
        _submission(),
        _juror(),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
    )
    op.create_index("ix_rapporteurs_call_id", "rapporteurs", ["call_id"])
    op.create_table(
        "syntheses",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(64), sa.ForeignKey("calls.id"), nullable=False),
        _submission(),
        _juror(),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("proposed_decision", sa.String(16), nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
    )
    op.create_index("ix_syntheses_call_id", "syntheses", ["call_id"])
    with op.batch_alter_table("scores") as batch:
        batch.add_column(sa.Column("message", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.drop_column("message")
    for table in ("syntheses", "rapporteurs", "assignments", "juror_tokens"):
        op.drop_table(table)
