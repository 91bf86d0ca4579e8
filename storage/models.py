"""SQLModel tables.  All datetimes are timezone-aware UTC (`storage.db.utcnow`).

Domain words follow docs/ARCHITECTURE.md: a *person* (citizen, officer or admin) has one or
more *channel identities*; a *laporan* (report) has *events*; the *inbox* stores raw
platform updates before they are acknowledged; the *outbox* holds every message to send.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

# Report statuses (stored values; labels come from the gettext catalogs).
STATUS_NEW = "baru"
STATUS_IN_PROGRESS = "diproses"
STATUS_RESOLVED = "selesai"
STATUS_REJECTED = "ditolak"
OPEN_STATUSES = (STATUS_NEW, STATUS_IN_PROGRESS)
STATUSES = (STATUS_NEW, STATUS_IN_PROGRESS, STATUS_RESOLVED, STATUS_REJECTED)


class Person(SQLModel, table=True):
    __tablename__ = "person"

    id: int | None = Field(default=None, primary_key=True)
    language: str = Field(default="id", max_length=5)
    display_name: str | None = Field(default=None, max_length=128)  # personal data
    phone: str | None = Field(default=None, max_length=32)  # personal data
    share_contact: bool = Field(default=False)  # consent to show name/contact to officers
    created_at: datetime


ROLE_OFFICER = "officer"
ROLE_HEAD = "head"  # OPD head: an officer who also receives escalations and summaries
ROLE_ADMIN = "admin"  # Diskominfo / BPBD: every OPD, broadcasts


class Staff(SQLModel, table=True):
    """A person's role beyond citizen. Officers and heads belong to one OPD."""

    __tablename__ = "staff"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", unique=True)
    role: str = Field(max_length=16)  # officer | head | admin
    opd: str | None = Field(default=None, max_length=20, index=True)
    created_at: datetime


class ChannelIdentity(SQLModel, table=True):
    __tablename__ = "channel_identity"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_identity_channel_ext"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    channel: str = Field(max_length=16)
    external_id: str = Field(max_length=128)
    address: str = Field(max_length=128)  # where messages go (chat id, wa_id)
    username: str | None = Field(default=None, max_length=64)  # public handle (Telegram @…)
    active: bool = Field(default=True)
    last_inbound_at: datetime | None = None
    created_at: datetime


class Report(SQLModel, table=True):
    __tablename__ = "report"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=24, unique=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    channel: str = Field(max_length=16)
    category: str = Field(max_length=40, index=True)
    description: str = Field(sa_column=Column(Text, nullable=False))
    lat: float | None = None
    lon: float | None = None
    place_text: str | None = Field(default=None, max_length=300)  # what was typed / understood
    location_source: str = Field(default="gps", max_length=16)  # gps | typed
    kode_kel: str | None = Field(default=None, max_length=20, index=True)
    kode_kec: str | None = Field(default=None, max_length=20, index=True)
    status: str = Field(default=STATUS_NEW, max_length=16, index=True)
    opd: str = Field(max_length=20, index=True)
    anonymous: bool = Field(default=False)
    supporters: int = Field(default=0)
    created_at: datetime
    updated_at: datetime
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None


class ReportEvent(SQLModel, table=True):
    __tablename__ = "report_event"

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="report.id", index=True)
    kind: str = Field(max_length=20)  # created | status | note | handover | reopened | rating
    status_from: str | None = Field(default=None, max_length=16)
    status_to: str | None = Field(default=None, max_length=16)
    actor_person_id: int | None = Field(default=None, foreign_key="person.id")
    actor_role: str = Field(default="citizen", max_length=16)
    note: str | None = Field(default=None, sa_column=Column(Text))
    internal: bool = Field(default=False)  # never shown to the citizen
    created_at: datetime


class Photo(SQLModel, table=True):
    __tablename__ = "photo"

    id: int | None = Field(default=None, primary_key=True)
    report_id: int | None = Field(default=None, foreign_key="report.id", index=True)
    event_id: int | None = Field(default=None, foreign_key="report_event.id")
    sha256: str = Field(max_length=64, index=True)
    path: str = Field(max_length=200)
    mime: str = Field(max_length=32)
    size: int
    channel_file_id: str | None = Field(default=None, max_length=256)
    role: str = Field(default="report", max_length=16)  # report | proof
    created_at: datetime


class Conversation(SQLModel, table=True):
    __tablename__ = "conversation"

    identity_id: int = Field(foreign_key="channel_identity.id", primary_key=True)
    step: str = Field(max_length=48)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime


class InboxItem(SQLModel, table=True):
    """A raw platform update, stored before it is acknowledged. (channel, key) dedupes."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("channel", "dedupe_key", name="uq_inbox_channel_key"),
        Index("ix_inbox_pending", "processed_at", "id"),
        # A sender's unhandled items: a worker takes an item only when none of the same
        # sender is before it (storage/inbox.py), so several processes keep each sender's order.
        Index(
            "ix_inbox_open_sender",
            "channel",
            "sender_key",
            "id",
            postgresql_where=text("processed_at IS NULL"),
            sqlite_where=text("processed_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    dedupe_key: str = Field(max_length=160)
    sender_key: str | None = Field(default=None, max_length=160)  # one person's order
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    received_at: datetime
    processed_at: datetime | None = None
    attempts: int = Field(default=0)
    error: str | None = Field(default=None, max_length=500)


class OutboxItem(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        # The claim: pending rows of a channel in priority, then age, order (storage/outbox.py).
        Index("ix_outbox_due", "state", "channel", "priority", "id"),
        # A chat's open rows: one in flight per chat, across processes (storage/outbox.py).
        Index(
            "ix_outbox_open_chat",
            "channel",
            "address",
            postgresql_where=text("state IN ('pending', 'sending')"),
            sqlite_where=text("state IN ('pending', 'sending')"),
        ),
        # A chat's last messages sent: its gap holds across processes (storage/outbox.py).
        Index(
            "ix_outbox_chat_sent",
            "channel",
            "address",
            "sent_at",
            postgresql_where=text("state = 'sent'"),
            sqlite_where=text("state = 'sent'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    address: str = Field(max_length=128)
    identity_id: int | None = Field(default=None, foreign_key="channel_identity.id", index=True)
    kind: str = Field(default="reply", max_length=20)
    priority: int = Field(default=50)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default="pending", max_length=12)  # pending|sending|sent|failed|cancelled
    claimed_by: int | None = Field(default=None)  # the sender slot of the process sending it
    paid: bool = Field(default=False)  # sent on the platform's paid lane (Telegram Stars)
    attempts: int = Field(default=0)
    next_attempt_at: datetime
    platform_message_id: str | None = Field(default=None, max_length=128, index=True)
    delivery_status: str | None = Field(default=None, max_length=16)
    error: str | None = Field(default=None, max_length=500)
    broadcast_id: int | None = Field(default=None, index=True)
    report_id: int | None = Field(default=None, index=True)
    created_at: datetime
    sent_at: datetime | None = None


class Counter(SQLModel, table=True):
    """Named sequences (report codes per city and month)."""

    __tablename__ = "counter"

    name: str = Field(primary_key=True, max_length=40)
    value: int = Field(default=0)


class AreaPolygon(SQLModel, table=True):
    """Kelurahan boundaries imported with `lapor areas import` (GeoJSON geometry text)."""

    __tablename__ = "area_polygon"

    kode_kel: str = Field(primary_key=True, max_length=20)
    kode_kec: str = Field(max_length=20)
    name: str = Field(max_length=100)
    geometry: str = Field(sa_column=Column(Text, nullable=False))
    imported_at: datetime


class ScheduledJob(SQLModel, table=True):
    """A one-off job that must survive restarts (scheduled broadcast, SLA check...).

    APScheduler fires it at `run_at`; the row is the durable record, so a job missed while
    the process was down runs at the next start.  `kind` names a handler registered by the
    composition root; `args` is plain JSON (nothing pickled).
    """

    __tablename__ = "scheduled_job"
    __table_args__ = (Index("ix_scheduled_job_due", "done_at", "run_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40)
    args: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    run_at: datetime
    created_at: datetime
    done_at: datetime | None = None
    cancelled: bool = Field(default=False)
    error: str | None = Field(default=None, max_length=500)


# The feature modules' tables register on the same metadata.
import storage.alert_models  # noqa: E402  (warnings, broadcasts)
import storage.api_models  # noqa: E402  (API keys, web demo mailbox)
import storage.work_models  # noqa: E402, F401  (officers, invites, SLA)
