"""SQL for the officers' work tables (storage/work_models.py), on the session of a `Repo`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, func
from sqlalchemy import select as core_select
from sqlmodel import col, select

from storage.base import insert_ignore
from storage.models import (
    OPEN_STATUSES,
    STATUS_RESOLVED,
    ChannelIdentity,
    OutboxItem,
    Person,
    Report,
    Staff,
)
from storage.unit import UnitStore
from storage.work_models import (
    Invite,
    NoticeLog,
    QueueGroup,
    ReportFollower,
    ReportTrack,
)

EARTH_RADIUS_M = 6_371_000.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


_REPORT = cast(Table, Report.__table__)  # type: ignore[attr-defined]
_NEARBY = core_select(_REPORT.c.id, _REPORT.c.lat, _REPORT.c.lon).where(
    _REPORT.c.category == bindparam("b_cat"),
    _REPORT.c.status.in_(list(OPEN_STATUSES)),
    _REPORT.c.created_at >= bindparam("b_since"),
    _REPORT.c.lat.between(bindparam("b_lat0"), bindparam("b_lat1")),
    _REPORT.c.lon.between(bindparam("b_lon0"), bindparam("b_lon1")),
)

_OUT = cast(Table, OutboxItem.__table__)  # type: ignore[attr-defined]
_CARD_MESSAGE = (
    core_select(_OUT.c.platform_message_id)
    .where(
        _OUT.c.report_id == bindparam("b_report"),
        _OUT.c.channel == bindparam("b_channel"),
        _OUT.c.address == bindparam("b_address"),
        _OUT.c.kind.in_(["card", "card_edit"]),
        _OUT.c.platform_message_id.is_not(None),
    )
    .order_by(_OUT.c.id.desc())
    .limit(1)
)


class WorkRepo(UnitStore):
    """Queries for invites, queue groups, followers, tracking and one-time notices."""

    # --- invites ------------------------------------------------------------------------------
    def add_invite(
        self, code_hash: str, opd: str, role: str, now: datetime, expires: datetime
    ) -> Invite:
        inv = Invite(code_hash=code_hash, opd=opd, role=role, created_at=now, expires_at=expires)
        self._s.add(inv)
        self._s.flush()
        return inv

    def invite_by_hash(self, code_hash: str) -> Invite | None:
        return self._s.exec(select(Invite).where(Invite.code_hash == code_hash)).first()

    def use_invite(self, invite: Invite, person_id: int, now: datetime) -> None:
        invite.used_at = now
        invite.used_by_person_id = person_id
        self._s.add(invite)

    # --- staff --------------------------------------------------------------------------------
    def staff_people(
        self, opd: str | None = None, roles: Sequence[str] | None = None
    ) -> list[tuple[Staff, Person]]:
        memo = self.uow.memo
        key = ("staff_people", opd, tuple(roles or ()))
        if key in memo:
            return list(memo[key])
        q = select(Staff, Person).where(Staff.person_id == Person.id)
        if opd is not None:
            q = q.where(Staff.opd == opd)
        if roles:
            q = q.where(col(Staff.role).in_(list(roles)))
        found = [(st, p) for st, p in self._s.exec(q.order_by(col(Staff.opd), col(Staff.id)))]
        memo[key] = found
        return list(found)

    def identities(self, person_id: int) -> list[ChannelIdentity]:
        q = select(ChannelIdentity).where(ChannelIdentity.person_id == person_id)
        return list(self._s.exec(q.order_by(col(ChannelIdentity.id))))

    # --- queue cards --------------------------------------------------------------------------
    def card_message_id(self, channel: str, address: str, report_id: int) -> str | None:
        """The platform message id of the newest report card posted (or re-posted) in this
        chat for this report: the message a card edit changes."""
        return (
            self._s.connection()
            .execute(
                _CARD_MESSAGE, {"b_channel": channel, "b_address": address, "b_report": report_id}
            )
            .scalar()
        )

    # --- queue groups ------------------------------------------------------------------------
    def queue_group(self, opd: str) -> QueueGroup | None:
        memo = self.uow.memo
        key = ("queue_group", opd)
        if key in memo:
            return cast(QueueGroup | None, memo[key])
        found = self._s.get(QueueGroup, opd)
        memo[key] = found
        return found

    def groups_of_chat(self, channel: str, chat_id: str) -> list[QueueGroup]:
        q = select(QueueGroup).where(QueueGroup.channel == channel, QueueGroup.chat_id == chat_id)
        return list(self._s.exec(q.order_by(col(QueueGroup.opd))))

    def link_group(
        self, opd: str, channel: str, chat_id: str, person_id: int | None, now: datetime
    ) -> QueueGroup:
        row = self._s.get(QueueGroup, opd)
        if row is None:
            row = QueueGroup(opd=opd, channel=channel, chat_id=chat_id, linked_at=now)
        row.channel, row.chat_id, row.linked_at = channel, chat_id, now
        row.linked_by_person_id = person_id
        self._s.add(row)
        self._s.flush()
        self.uow.memo.clear()  # what the batch remembered of queue groups is stale
        return row

    def move_group_chat(self, channel: str, old: str, new: str) -> list[str]:
        """Queue groups in chat `old` are in chat `new` from now on (a Telegram group
        upgraded to a supergroup gets a new id); the OPDs whose group moved."""
        rows = self.groups_of_chat(channel, old)
        for row in rows:
            row.chat_id = new
            self._s.add(row)
        if rows:
            self._s.flush()
            self.uow.memo.clear()  # what the batch remembered of queue groups is stale
        return [row.opd for row in rows]

    # --- followers ---------------------------------------------------------------------------
    def follow(self, report: Report, person_id: int, now: datetime) -> bool:
        """Add a follower; the report's supporter count rises. False if already following."""
        assert report.id is not None
        row = {"report_id": report.id, "person_id": person_id, "created_at": now}
        if not insert_ignore(self._s, ReportFollower, row, ["report_id", "person_id"]):
            return False
        report.supporters += 1
        self._s.add(report)
        return True

    def is_follower(self, report_id: int, person_id: int) -> bool:
        q = select(ReportFollower.id).where(
            ReportFollower.report_id == report_id, ReportFollower.person_id == person_id
        )
        return self._s.exec(q).first() is not None

    def followers(self, report_id: int) -> list[int]:
        q = select(ReportFollower.person_id).where(ReportFollower.report_id == report_id)
        return list(self._s.exec(q.order_by(col(ReportFollower.id))))

    # --- tracking -----------------------------------------------------------------------------
    def track(self, report_id: int) -> ReportTrack | None:
        held = self.uow.tracks.get(report_id)
        return held if held is not None else self._s.get(ReportTrack, report_id)

    def add_track(self, track: ReportTrack) -> None:
        """The track of a report created in this transaction (written at the flush)."""
        self.uow.add_track(track)

    def save(self, *rows: object) -> None:
        """Changes to loaded rows; rows the unit of work holds are written as they are."""
        held = [*self.uow.tracks.values(), *self.uow.reports.values()]
        for row in rows:
            if not any(row is h for h in held):
                self._s.add(row)

    def open_reports(
        self, opd: str | None, *, limit: int = 10, offset: int = 0
    ) -> list[tuple[Report, ReportTrack | None]]:
        """Open reports (baru, diproses), oldest first; `opd=None` means every OPD."""
        q = (
            select(Report, ReportTrack)
            .join(ReportTrack, col(ReportTrack.report_id) == col(Report.id), isouter=True)
            .where(col(Report.status).in_(list(OPEN_STATUSES)))
        )
        if opd is not None:
            q = q.where(Report.opd == opd)
        q = q.order_by(col(Report.created_at), col(Report.id)).offset(offset).limit(limit)
        return [(r, t) for r, t in self._s.exec(q)]

    def count_open(self, opd: str | None) -> int:
        q = (
            select(func.count())
            .select_from(Report)
            .where(col(Report.status).in_(list(OPEN_STATUSES)))
        )
        if opd is not None:
            q = q.where(Report.opd == opd)
        return int(self._s.exec(q).one())

    def open_tracked(self) -> list[tuple[Report, ReportTrack]]:
        """Every open report with its tracking row (for the SLA sweep)."""
        q = (
            select(Report, ReportTrack)
            .where(col(ReportTrack.report_id) == col(Report.id))
            .where(col(Report.status).in_(list(OPEN_STATUSES)))
            .order_by(col(Report.id))
        )
        return [(r, t) for r, t in self._s.exec(q)]

    def awaiting_feedback(self) -> list[tuple[Report, ReportTrack]]:
        """Resolved reports whose citizen has not answered "is it solved?" and not closed."""
        q = (
            select(Report, ReportTrack)
            .where(col(ReportTrack.report_id) == col(Report.id))
            .where(Report.status == STATUS_RESOLVED)
            .where(col(ReportTrack.closed_at).is_(None))
            .where(col(ReportTrack.feedback_asked_at).is_not(None))
            .where(col(ReportTrack.feedback).is_(None))
            .order_by(col(Report.id))
        )
        return [(r, t) for r, t in self._s.exec(q)]

    def reports_with_track(self, opd: str | None) -> list[tuple[Report, ReportTrack | None]]:
        q = select(Report, ReportTrack).join(
            ReportTrack, col(ReportTrack.report_id) == col(Report.id), isouter=True
        )
        if opd is not None:
            q = q.where(Report.opd == opd)
        return [(r, t) for r, t in self._s.exec(q.order_by(col(Report.id)))]

    def created_between(self, opd: str, start: datetime, end: datetime) -> int:
        q = (
            select(func.count())
            .select_from(Report)
            .where(Report.opd == opd, col(Report.created_at) >= start, col(Report.created_at) < end)
        )
        return int(self._s.exec(q).one())

    def resolved_between(self, opd: str, start: datetime, end: datetime) -> int:
        q = (
            select(func.count())
            .select_from(Report)
            .where(
                Report.opd == opd,
                Report.status == STATUS_RESOLVED,
                col(Report.resolved_at) >= start,
                col(Report.resolved_at) < end,
            )
        )
        return int(self._s.exec(q).one())

    # --- duplicates ---------------------------------------------------------------------------
    def nearby_open(
        self,
        category: str,
        lat: float,
        lon: float,
        *,
        radius_m: float,
        since: datetime,
    ) -> list[tuple[Report, float]]:
        """Open reports of a category within `radius_m` created since `since`, nearest first."""
        dlat = radius_m / 111_320.0
        dlon = radius_m / (111_320.0 * max(0.01, math.cos(math.radians(lat))))
        self._s.flush()
        rows = self._s.connection().execute(
            _NEARBY,
            {
                "b_cat": category,
                "b_since": since,
                "b_lat0": lat - dlat,
                "b_lat1": lat + dlat,
                "b_lon0": lon - dlon,
                "b_lon1": lon + dlon,
            },
        )
        hits = []
        for rid, rlat, rlon in rows:  # ids first: usually none, so no ORM object is built
            if rlat is None or rlon is None:
                continue
            d = distance_m(lat, lon, rlat, rlon)
            if d <= radius_m:
                hits.append((rid, d))
        found = []
        for rid, d in sorted(hits, key=lambda x: x[1]):
            r = self._s.get(Report, rid)
            if r is not None:
                found.append((r, d))
        return found

    # --- one-time notices ---------------------------------------------------------------------
    def claim_notice(self, key: str, now: datetime) -> bool:
        """True the first time a key is claimed (then the notice is sent in this transaction)."""
        row = {"key": key[:120], "created_at": now}
        return insert_ignore(self._s, NoticeLog, row, ["key"]) == 1
