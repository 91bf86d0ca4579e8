"""warnings broadcasts: tables for issue 5 (subscriptions, broadcasts, sensors, warnings).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subscriber",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("home_lat", sa.Float(), nullable=True),
        sa.Column("home_lon", sa.Float(), nullable=True),
        sa.Column("home_kel", sa.String(length=20), nullable=True),
        sa.Column("offered_at", TZ, nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("person_id"),
    )
    op.create_table(
        "subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("kode_kel", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("person_id", "kode_kel", name="uq_subscription_kel"),
    )
    op.create_index("ix_subscription_person_id", "subscription", ["person_id"])
    op.create_index("ix_subscription_kode_kel", "subscription", ["kode_kel"])
    op.create_table(
        "broadcast",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("level", sa.String(length=12), nullable=True),
        sa.Column("ref", sa.String(length=160), nullable=True),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("texts", sa.JSON(), nullable=False),
        sa.Column("photo", sa.JSON(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("scheduled_at", TZ, nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("started_at", TZ, nullable=True),
        sa.Column("fanned_at", TZ, nullable=True),
        sa.Column("finished_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_broadcast_state", "broadcast", ["state", "priority", "id"])
    op.create_table(
        "sensor_state",
        sa.Column("sensor_id", sa.String(length=40), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("monitoring_since", TZ, nullable=False),
        sa.Column("silent_alerted", sa.Boolean(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("sensor_id"),
    )
    op.create_table(
        "sensor_level_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sensor_id", sa.String(length=40), nullable=False),
        sa.Column("old_level", sa.String(length=12), nullable=False),
        sa.Column("new_level", sa.String(length=12), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("reading_ts", TZ, nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sensor_level_change_sensor_id", "sensor_level_change", ["sensor_id"])
    op.create_table(
        "published_warning",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=160), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("level", sa.String(length=12), nullable=False),
        sa.Column("headline", sa.String(length=300), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("cap_xml", sa.Text(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=True),
        sa.Column("sent_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("identifier"),
    )
    op.create_index("ix_published_warning_broadcast_id", "published_warning", ["broadcast_id"])
    op.create_table(
        "processed_event",
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("source", "key"),
    )


def downgrade() -> None:
    op.drop_table("processed_event")
    op.drop_index("ix_published_warning_broadcast_id", table_name="published_warning")
    op.drop_table("published_warning")
    op.drop_index("ix_sensor_level_change_sensor_id", table_name="sensor_level_change")
    op.drop_table("sensor_level_change")
    op.drop_table("sensor_state")
    op.drop_index("ix_broadcast_state", table_name="broadcast")
    op.drop_table("broadcast")
    op.drop_index("ix_subscription_kode_kel", table_name="subscription")
    op.drop_index("ix_subscription_person_id", table_name="subscription")
    op.drop_table("subscription")
    op.drop_table("subscriber")
