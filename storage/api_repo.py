"""Queries of the open side (issue 6): API keys, public report listings, map, dashboard, demo.

Like `storage.repo.Repo`, an `ApiRepo` wraps one session (= one transaction).  Nothing here
returns names or contacts: callers get reports, public events and photos only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, inspect, text
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from storage.api_models import ApiKey, WebMessage
from storage.db import utcnow
from storage.models import InboxItem, OutboxItem, Photo, Report, ReportEvent

KEY_PREFIX = "lw_"
LAST_USED_EVERY = timedelta(minutes=5)  # don't write on every request


def new_api_key() -> str:
    """A fresh random key (shown once; only its hash is stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@dataclass
class ReportQuery:
    """Filters of a report listing; every field optional.  `statuses` are stored statuses."""

    codes: Sequence[str] = ()
    categories: Sequence[str] = ()
    statuses: Sequence[str] = ()
    opds: Sequence[str] = ()
    kecamatan: Sequence[str] = ()
    start: datetime | None = None
    end: datetime | None = None
    with_point: bool = False
    page: int = 1
    page_size: int = 100


@dataclass
class ReportRow:
    """A report with what a public answer may show of it."""

    report: Report
    events: list[ReportEvent] = field(default_factory=list)
    photos: list[Photo] = field(default_factory=list)


class ApiRepo:
    def __init__(self, session: Session) -> None:
        self.s = session

    # --- API keys -------------------------------------------------------------------------
    def create_key(self, name: str) -> tuple[ApiKey, str]:
        raw = new_api_key()
        row = ApiKey(
            name=name[:64],
            prefix=raw[: len(KEY_PREFIX) + 6],
            key_hash=hash_key(raw),
            created_at=utcnow(),
        )
        self.s.add(row)
        self.s.flush()
        return row, raw

    def keys(self) -> list[ApiKey]:
        return list(self.s.exec(select(ApiKey).order_by(col(ApiKey.id))))

    def revoke(self, ident: str) -> int:
        """Revoke by id, by name (all keys of that name) or by the shown prefix."""
        q = select(ApiKey).where(ApiKey.revoked_at == None)  # noqa: E711
        if ident.isdigit():
            q = q.where(ApiKey.id == int(ident))
        elif ident.startswith(KEY_PREFIX):
            q = q.where(ApiKey.prefix == ident)
        else:
            q = q.where(ApiKey.name == ident)
        rows = list(self.s.exec(q))
        now = utcnow()
        for row in rows:
            row.revoked_at = now
            self.s.add(row)
        return len(rows)

    def check_key(self, raw: str) -> ApiKey | None:
        """The live key matching `raw`, or None (unknown or revoked)."""
        if not raw or len(raw) > 200:
            return None
        digest = hash_key(raw)
        row = self.s.exec(select(ApiKey).where(ApiKey.key_hash == digest)).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.key_hash, digest):
            return None
        now = utcnow()
        if row.last_used_at is None or now - _aware(row.last_used_at) > LAST_USED_EVERY:
            row.last_used_at = now
            self.s.add(row)
        return row

    # --- reports --------------------------------------------------------------------------
    def _filtered(self, q: Any, f: ReportQuery) -> Any:
        if f.codes:
            q = q.where(col(Report.code).in_([c.upper() for c in f.codes]))
        if f.categories:
            q = q.where(col(Report.category).in_(list(f.categories)))
        if f.statuses:
            q = q.where(col(Report.status).in_(list(f.statuses)))
        if f.opds:
            q = q.where(col(Report.opd).in_(list(f.opds)))
        if f.kecamatan:
            q = q.where(col(Report.kode_kec).in_(list(f.kecamatan)))
        if f.start is not None:
            q = q.where(col(Report.created_at) >= f.start)
        if f.end is not None:
            q = q.where(col(Report.created_at) <= f.end)
        if f.with_point:
            q = q.where(col(Report.lat).is_not(None), col(Report.lon).is_not(None))
        return q

    def count_reports(self, f: ReportQuery) -> int:
        q = self._filtered(select(func.count()).select_from(Report), f)
        return int(self.s.exec(q).one())

    def find_reports(self, f: ReportQuery, *, details: bool = True) -> list[ReportRow]:
        """One page of reports, newest first, with public events and photos."""
        q = self._filtered(select(Report), f)
        q = q.order_by(col(Report.created_at).desc(), col(Report.id).desc())
        q = q.offset((f.page - 1) * f.page_size).limit(f.page_size)
        reports = list(self.s.exec(q))
        rows = [ReportRow(r) for r in reports]
        if details and rows:
            by_id = {r.report.id: r for r in rows}
            ids = list(by_id)
            events = self.s.exec(
                select(ReportEvent)
                .where(col(ReportEvent.report_id).in_(ids), ReportEvent.internal == False)  # noqa: E712
                .order_by(col(ReportEvent.created_at), col(ReportEvent.id))
            )
            for ev in events:
                by_id[ev.report_id].events.append(ev)
            photos = self.s.exec(
                select(Photo).where(col(Photo.report_id).in_(ids)).order_by(col(Photo.id))
            )
            for ph in photos:
                if ph.report_id is not None:
                    by_id[ph.report_id].photos.append(ph)
        return rows

    def photo_by_sha(self, sha256: str) -> Photo | None:
        """A photo attached to a report (only those are public)."""
        return self.s.exec(
            select(Photo).where(Photo.sha256 == sha256, col(Photo.report_id).is_not(None))
        ).first()

    def map_points(self, f: ReportQuery, limit: int = 20_000) -> list[tuple[Any, ...]]:
        """(code, lat, lon, status, category, opd, kode_kec, anonymous, created_at, id) rows."""
        q = sa_select(
            col(Report.code),
            col(Report.lat),
            col(Report.lon),
            col(Report.status),
            col(Report.category),
            col(Report.opd),
            col(Report.kode_kec),
            col(Report.anonymous),
            col(Report.created_at),
            col(Report.id),
        )
        f.with_point = True
        q = self._filtered(q, f).order_by(col(Report.id).desc()).limit(limit)
        return [tuple(r) for r in self.s.execute(q)]

    def dashboard_rows(
        self, since: datetime | None, opd: str | None = None
    ) -> list[tuple[Any, ...]]:
        """(id, opd, status, category, created_at, first_response_at, resolved_at) rows of
        reports created since `since` or still open."""
        q = sa_select(
            col(Report.id),
            col(Report.opd),
            col(Report.status),
            col(Report.category),
            col(Report.created_at),
            col(Report.first_response_at),
            col(Report.resolved_at),
        )
        if since is not None:
            q = q.where(
                (col(Report.created_at) >= since) | col(Report.status).in_(["baru", "diproses"])
            )
        if opd:
            q = q.where(col(Report.opd) == opd)
        return [tuple(r) for r in self.s.execute(q)]

    def reports_by_status(self) -> dict[str, int]:
        rows = self.s.exec(select(Report.status, func.count()).group_by(Report.status))
        return {status: int(n) for status, n in rows}

    def open_report_times(self) -> list[tuple[int, str, datetime]]:
        """(id, category, created_at) of open reports (for SLA breach counts)."""
        rows = self.s.exec(
            select(Report.id, Report.category, Report.created_at).where(
                col(Report.status).in_(["baru", "diproses"])
            )
        )
        return [(int(i or 0), str(c), t) for i, c, t in rows]

    def tracked_deadlines(self, report_ids: Sequence[int]) -> dict[int, datetime]:
        """Resolution deadlines kept by the officers' module (`report_track`), if it exists."""
        if not report_ids or not self._has_table("report_track"):
            return {}
        out: dict[int, datetime] = {}
        ids = list(report_ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            stmt = text(
                "SELECT report_id, resolution_due_at FROM report_track "
                "WHERE report_id IN ({})".format(",".join(str(int(x)) for x in chunk))
            )
            for rid, due in self.s.execute(stmt):
                if due is not None:
                    out[int(rid)] = _parse_dt(due)
        return out

    def _has_table(self, name: str) -> bool:
        try:
            return bool(inspect(self.s.connection()).has_table(name))
        except Exception:
            return False

    # --- outbox figures (health, metrics) -------------------------------------------------
    def outbox_backlog_by_channel(self) -> dict[str, int]:
        rows = self.s.exec(
            select(OutboxItem.channel, func.count())
            .where(col(OutboxItem.state).in_(["pending", "sending"]))
            .group_by(OutboxItem.channel)
        )
        return {ch: int(n) for ch, n in rows}

    def outbox_by_channel_state(self) -> list[tuple[str, str, int]]:
        rows = self.s.exec(
            select(OutboxItem.channel, OutboxItem.state, func.count()).group_by(
                OutboxItem.channel, OutboxItem.state
            )
        )
        return [(ch, st, int(n)) for ch, st, n in rows]

    def inbox_pending_count(self) -> int:
        return int(
            self.s.exec(
                select(func.count()).select_from(InboxItem).where(InboxItem.processed_at == None)  # noqa: E711
            ).one()
        )

    # --- web demo mailbox -----------------------------------------------------------------
    def add_web_message(
        self, address: str, payload: dict[str, Any], outbox_id: int | None
    ) -> WebMessage:
        row = WebMessage(address=address, payload=payload, outbox_id=outbox_id, created_at=utcnow())
        self.s.add(row)
        self.s.flush()
        return row

    def web_messages(self, address: str, after: int = 0, limit: int = 50) -> list[WebMessage]:
        q = (
            select(WebMessage)
            .where(WebMessage.address == address, col(WebMessage.id) > after)
            .order_by(col(WebMessage.id))
            .limit(limit)
        )
        return list(self.s.exec(q))


def _aware(moment: datetime) -> datetime:
    from datetime import UTC

    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parse_dt(value: Any) -> datetime:
    """Raw SQL on SQLite returns text; PostgreSQL returns datetime."""
    if isinstance(value, datetime):
        return _aware(value)
    return _aware(datetime.fromisoformat(str(value)))


def public_warnings(s: Session, since: datetime) -> dict[str, Any]:
    """{"warnings": [{headline, level, source, sent_at}], "sensors": [{id, level, value,
    points: [[iso, value], ...]}]} from `published_warning`, `sensor_state` and
    `sensor_level_change` when those tables exist."""
    out: dict[str, Any] = {"warnings": [], "sensors": []}
    names = set(inspect(s.connection()).get_table_names())
    if "published_warning" in names:
        rows = s.execute(
            text(
                "SELECT headline, level, source, sent_at FROM published_warning "
                "WHERE sent_at >= :since ORDER BY sent_at DESC LIMIT 5"
            ),
            {"since": since},
        )
        for headline, level, source, sent_at in rows:
            if str(level).lower() == "normal":
                continue
            out["warnings"].append(
                {
                    "headline": headline,
                    "level": level,
                    "source": source,
                    "sent_at": _iso(sent_at),
                }
            )
    if "sensor_state" in names:
        points: dict[str, list[list[Any]]] = {}
        if "sensor_level_change" in names:
            changes = s.execute(
                text(
                    "SELECT sensor_id, value, reading_ts FROM sensor_level_change "
                    "WHERE reading_ts >= :since ORDER BY reading_ts"
                ),
                {"since": since},
            )
            for sid, value, ts in changes:
                points.setdefault(str(sid), []).append([_iso(ts), float(value)])
        for sid, state in s.execute(text("SELECT sensor_id, state FROM sensor_state")):
            data = state if isinstance(state, dict) else json.loads(state or "{}")
            out["sensors"].append(
                {
                    "id": str(sid),
                    "level": data.get("level"),
                    "value": data.get("value", data.get("last_value")),
                    "points": points.get(str(sid), [])[-200:],
                }
            )
    return out


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(str(value))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.isoformat(timespec="seconds")
