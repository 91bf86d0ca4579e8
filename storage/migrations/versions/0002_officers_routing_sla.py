"""officers routing sla: tables for issue 3 (officers, invites, queue groups, followers, feedback, SLA).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invite",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("opd", sa.String(length=20), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_by_person_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["used_by_person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code_hash"),
    )
    op.create_table(
        "queue_group",
        sa.Column("opd", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=128), nullable=False),
        sa.Column("linked_by_person_id", sa.Integer(), nullable=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["linked_by_person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("opd"),
    )
    with op.batch_alter_table("queue_group", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_queue_group_chat_id"), ["chat_id"], unique=False)

    op.create_table(
        "report_follower",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["report.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("report_id", "person_id", name="uq_follower_report_person"),
    )
    with op.batch_alter_table("report_follower", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_report_follower_report_id"), ["report_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_report_follower_person_id"), ["person_id"], unique=False
        )

    op.create_table(
        "report_track",
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("assigned_person_id", sa.Integer(), nullable=True),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("cycle_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("response_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolution_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("feedback_asked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("feedback", sa.String(length=8), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["report.id"]),
        sa.ForeignKeyConstraint(["assigned_person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("report_id"),
    )
    with op.batch_alter_table("report_track", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_report_track_feedback_asked_at"), ["feedback_asked_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_report_track_closed_at"), ["closed_at"], unique=False)

    op.create_table(
        "notice_log",
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("notice_log")
    with op.batch_alter_table("report_track", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_track_closed_at"))
        batch_op.drop_index(batch_op.f("ix_report_track_feedback_asked_at"))
    op.drop_table("report_track")
    with op.batch_alter_table("report_follower", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_follower_person_id"))
        batch_op.drop_index(batch_op.f("ix_report_follower_report_id"))
    op.drop_table("report_follower")
    with op.batch_alter_table("queue_group", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_queue_group_chat_id"))
    op.drop_table("queue_group")
    op.drop_table("invite")
