"""open api: tables for issue 6 (API keys and the public web).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Public listings (Open311, map, dashboard) page through reports newest first.
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.create_index("ix_report_created_at_id", ["created_at", "id"], unique=False)

    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_key_name"), ["name"], unique=False)

    op.create_table(
        "web_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=128), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("web_message", schema=None) as batch_op:
        batch_op.create_index("ix_web_message_address_id", ["address", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_web_message_outbox_id"), ["outbox_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("web_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_message_outbox_id"))
        batch_op.drop_index("ix_web_message_address_id")
    op.drop_table("web_message")
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_key_name"))
    op.drop_table("api_key")
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_index("ix_report_created_at_id")
