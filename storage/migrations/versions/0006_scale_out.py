"""scale out: several processes share the inbox and the outbox.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

OPEN_ROWS = sa.text("state IN ('pending', 'sending')")
OPEN_ITEMS = sa.text("processed_at IS NULL")
SENT_ROWS = sa.text("state = 'sent'")


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("paid", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # The claim walks one channel's pending rows in (priority, id) order and stops at its
    # LIMIT: the channel goes into the index, before the order.
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")
        batch_op.create_index("ix_outbox_due", ["state", "channel", "priority", "id"])
    op.create_index(
        "ix_outbox_open_chat",
        "outbox",
        ["channel", "address"],
        postgresql_where=OPEN_ROWS,
        sqlite_where=OPEN_ROWS,
    )
    op.create_index(
        "ix_outbox_chat_sent",
        "outbox",
        ["channel", "address", "sent_at"],
        postgresql_where=SENT_ROWS,
        sqlite_where=SENT_ROWS,
    )
    op.create_index(
        "ix_inbox_open_sender",
        "inbox",
        ["channel", "sender_key", "id"],
        postgresql_where=OPEN_ITEMS,
        sqlite_where=OPEN_ITEMS,
    )


def downgrade() -> None:
    op.drop_index("ix_inbox_open_sender", table_name="inbox")
    op.drop_index("ix_outbox_chat_sent", table_name="outbox")
    op.drop_index("ix_outbox_open_chat", table_name="outbox")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")
        batch_op.create_index("ix_outbox_due", ["state", "priority", "id"])
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("paid")
        batch_op.drop_column("claimed_by")
