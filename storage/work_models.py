"""Tables for the officers' work on reports: invites, queue groups, followers,
per-report tracking (assignment, SLA deadlines, citizen feedback) and a log of one-time notices.

Imported by `storage/migrations/env.py` (and by `storage.work_repo`) so the tables register
in `SQLModel.metadata`.  All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

# Kinds of one-time notices (keys of `NoticeLog` start with these).
STAGE_RESPONSE = "response"
STAGE_RESOLUTION = "resolution"

FEEDBACK_YES = "yes"
FEEDBACK_NO = "no"


class Invite(SQLModel, table=True):
    """A one-time code that makes whoever sends `/daftar CODE` an officer or head of an OPD.

    Only the SHA-256 of the code is stored.
    """

    __tablename__ = "invite"

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(max_length=64, unique=True)
    opd: str = Field(max_length=20)
    role: str = Field(max_length=16)  # officer | head
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    used_by_person_id: int | None = Field(default=None, foreign_key="person.id")


class QueueGroup(SQLModel, table=True):
    """The chat (a Telegram group) where an OPD's new reports are posted."""

    __tablename__ = "queue_group"

    opd: str = Field(primary_key=True, max_length=20)
    channel: str = Field(max_length=16)
    chat_id: str = Field(max_length=128, index=True)
    linked_by_person_id: int | None = Field(default=None, foreign_key="person.id")
    linked_at: datetime


class ReportFollower(SQLModel, table=True):
    """A citizen who supports someone else's report and gets its updates."""

    __tablename__ = "report_follower"
    __table_args__ = (UniqueConstraint("report_id", "person_id", name="uq_follower_report_person"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="report.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    created_at: datetime


class ReportTrack(SQLModel, table=True):
    """The working state of one report beside the `report` row: who has it, its deadlines
    (SLA in working days), and the citizen's answer after it was resolved.

    `cycle` grows when a report is handed over or reopened: deadlines start again and the
    reminders/escalations of the new cycle may be sent once more.
    """

    __tablename__ = "report_track"

    report_id: int = Field(foreign_key="report.id", primary_key=True)
    assigned_person_id: int | None = Field(default=None, foreign_key="person.id")
    cycle: int = Field(default=0)
    cycle_started_at: datetime
    response_due_at: datetime
    resolution_due_at: datetime
    feedback_asked_at: datetime | None = Field(default=None, index=True)
    feedback: str | None = Field(default=None, max_length=8)  # yes | no
    rating: int | None = None  # 1..5
    closed_at: datetime | None = Field(default=None, index=True)
    reopen_count: int = Field(default=0)


class NoticeLog(SQLModel, table=True):
    """Notices that must go out once: `sla:<report>:<cycle>:<stage>:<remind|escalate>`,
    `digest:<OPD>:<YYYY-MM-DD>`.  Inserted in the transaction that queues the message."""

    __tablename__ = "notice_log"

    key: str = Field(primary_key=True, max_length=120)
    created_at: datetime


__all__ = [
    "FEEDBACK_NO",
    "FEEDBACK_YES",
    "STAGE_RESOLUTION",
    "STAGE_RESPONSE",
    "Invite",
    "NoticeLog",
    "QueueGroup",
    "ReportFollower",
    "ReportTrack",
]
