"""contacts and consents (issue 13): the Telegram handle of an identity, and the consent to
announcements kept apart from the warnings.

Existing subscribers agreed to warnings only: their announcement consent starts empty.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channel_identity", schema=None) as batch_op:
        batch_op.add_column(sa.Column("username", sa.String(length=64), nullable=True))
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("announcements_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.drop_column("announcements_at")
    with op.batch_alter_table("channel_identity", schema=None) as batch_op:
        batch_op.drop_column("username")
