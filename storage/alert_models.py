"""Tables of warnings and announcements.

- `subscriber` / `subscription`: who wants warnings for which kelurahan, and a home point;
  whether (since when) the person also agreed to the city's announcements;
- `broadcast`: one warning or announcement (audience, text per language, photo, state,
  fan-out cursor); its messages are `outbox` rows carrying `broadcast_id`;
- `sensor_state` / `sensor_level_change`: what each water-level sensor last said and every
  level change (for the map and for audits);
- `published_warning`: every warning as a CAP 1.2 document (served with an Atom feed);
- `processed_event`: BMKG quakes, nowcast alerts and CAP documents already handled.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

# broadcast.state
BC_DRAFT = "draft"
BC_SCHEDULED = "scheduled"  # waits for its scheduled_job
BC_QUEUED = "queued"  # the fan-out has not started
BC_FANNING = "fanning"  # outbox rows are being written (cursor = last person id done)
BC_SENDING = "sending"  # every row written; the sender is draining them
BC_DONE = "done"
BC_CANCELLED = "cancelled"
BC_ACTIVE = (BC_QUEUED, BC_FANNING)

KIND_WARNING = "warning"
KIND_ANNOUNCEMENT = "announcement"


class Subscriber(SQLModel, table=True):
    """Per person: the home point (radius alerts) and whether we already offered warnings."""

    __tablename__ = "subscriber"

    person_id: int = Field(foreign_key="person.id", primary_key=True)
    home_lat: float | None = None  # personal data
    home_lon: float | None = None
    home_kel: str | None = Field(default=None, max_length=20)
    offered_at: datetime | None = None  # the one-time question after the first report
    # consent to the city's announcements (its own yes, apart from the warnings): since when
    announcements_at: datetime | None = None
    updated_at: datetime


class Subscription(SQLModel, table=True):
    __tablename__ = "subscription"
    __table_args__ = (UniqueConstraint("person_id", "kode_kel", name="uq_subscription_kel"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    kode_kel: str = Field(max_length=20, index=True)
    source: str = Field(default="pick", max_length=12)  # pick | home | report
    created_at: datetime


class Broadcast(SQLModel, table=True):
    __tablename__ = "broadcast"
    __table_args__ = (Index("ix_broadcast_state", "state", "priority", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default=KIND_ANNOUNCEMENT, max_length=16)  # warning | announcement
    source: str = Field(max_length=12)  # admin | sensor | bmkg | cap
    level: str | None = Field(default=None, max_length=12)  # normal|waspada|siaga|awas
    ref: str | None = Field(default=None, max_length=160)  # sensor id, quake id, CAP id
    audience: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    texts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    photo: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    priority: int = Field(default=90)
    state: str = Field(default=BC_QUEUED, max_length=12)
    cursor: int = Field(default=0)  # person ids ≤ cursor have their outbox rows
    recipients: int = Field(default=0)  # persons reached so far by the fan-out
    messages: int = Field(default=0)  # outbox rows written so far
    scheduled_at: datetime | None = None
    job_id: int | None = None
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime
    started_at: datetime | None = None
    fanned_at: datetime | None = None
    finished_at: datetime | None = None


class SensorStateRow(SQLModel, table=True):
    __tablename__ = "sensor_state"

    sensor_id: str = Field(primary_key=True, max_length=40)
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    monitoring_since: datetime
    silent_alerted: bool = Field(default=False)
    rejected: int = Field(default=0)
    updated_at: datetime


class SensorLevelChange(SQLModel, table=True):
    __tablename__ = "sensor_level_change"

    id: int | None = Field(default=None, primary_key=True)
    sensor_id: str = Field(max_length=40, index=True)
    old_level: str = Field(max_length=12)
    new_level: str = Field(max_length=12)
    value: float
    reading_ts: datetime
    broadcast_id: int | None = None
    created_at: datetime


class PublishedWarning(SQLModel, table=True):
    """A warning as CAP 1.2 (what `/warnings/<id>.xml` serves and the Atom feed lists)."""

    __tablename__ = "published_warning"

    id: int | None = Field(default=None, primary_key=True)
    identifier: str = Field(max_length=160, unique=True)
    source: str = Field(max_length=12)
    level: str = Field(max_length=12)
    headline: str = Field(max_length=300)
    summary: str | None = Field(default=None, sa_column=Column(Text))
    cap_xml: str = Field(sa_column=Column(Text, nullable=False))
    broadcast_id: int | None = Field(default=None, index=True)
    sent_at: datetime


class ProcessedEvent(SQLModel, table=True):
    """An outside event handled once: (source, key) e.g. ("bmkg_quake", event id)."""

    __tablename__ = "processed_event"

    source: str = Field(primary_key=True, max_length=16)
    key: str = Field(primary_key=True, max_length=160)
    broadcast_id: int | None = None
    created_at: datetime
