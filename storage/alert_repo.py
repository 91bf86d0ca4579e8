"""All SQL of warnings and announcements.  An `AlertRepo` wraps one session (= transaction)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, exists, func, insert, or_, update
from sqlalchemy import select as core_select
from sqlmodel import col, select

from storage.alert_models import (
    BC_ACTIVE,
    BC_CANCELLED,
    BC_DONE,
    BC_FANNING,
    BC_QUEUED,
    BC_SCHEDULED,
    BC_SENDING,
    Broadcast,
    ProcessedEvent,
    PublishedWarning,
    SensorLevelChange,
    SensorStateRow,
    Subscriber,
    Subscription,
)
from storage.base import insert_ignore
from storage.models import (
    ROLE_ADMIN,
    ChannelIdentity,
    OutboxItem,
    Person,
    Report,
    ScheduledJob,
    Staff,
)
from storage.unit import UnitStore

_REPORT = cast(Table, Report.__table__)  # type: ignore[attr-defined]
_SUB = cast(Table, Subscription.__table__)  # type: ignore[attr-defined]
_SUBSCRIBER = cast(Table, Subscriber.__table__)  # type: ignore[attr-defined]


def _offer_once() -> Any:
    """After a report, in one statement: record the one-time warnings offer (a subscriber row
    with `offered_at`) if this is the person's first report, they have no warnings set up yet
    (no subscriber row: no home point, never offered) and don't follow its kelurahan.
    RETURNING gives a row only when the offer is recorded now. A plain INSERT … SELECT, so
    SQLAlchemy caches its compiled form (ON CONFLICT statements are compiled on every call)."""
    at = bindparam("b_now", type_=_SUBSCRIBER.c.offered_at.type)
    pid = bindparam("b_pid", type_=_SUBSCRIBER.c.person_id.type)
    # b_stored: how many of the person's reports are written already if this is their first
    # (the new one may still be held by the unit of work)
    first_report = core_select(func.count()).select_from(_REPORT).where(
        _REPORT.c.person_id == pid
    ).scalar_subquery() == bindparam("b_stored")
    follows = exists().where(_SUB.c.person_id == pid, _SUB.c.kode_kel == bindparam("b_kel"))
    set_up = exists().where(_SUBSCRIBER.c.person_id == pid)
    candidate = core_select(pid, at, at).where(first_report, ~follows, ~set_up)
    return (
        insert(_SUBSCRIBER)
        .from_select(["person_id", "offered_at", "updated_at"], candidate)
        .returning(_SUBSCRIBER.c.person_id)
    )


_OFFER_ONCE = _offer_once()


class SubscriberRow(NamedTuple):
    """One subscriber of a fan-out page: subscribed kelurahan codes, home point, and whether
    they agreed to announcements (warnings need an area, announcements this yes)."""

    person_id: int
    kelurahan_codes: list[str]
    home: tuple[float, float] | None  # (lat, lon)
    announcements: bool = False


class RecipientIdentity(NamedTuple):
    identity_id: int
    channel: str
    address: str


class Recipient(NamedTuple):
    """A person a broadcast goes to: their language and active identities."""

    language: str
    identities: list[RecipientIdentity]


class AlertRepo(UnitStore):
    # --- subscriptions ----------------------------------------------------------------------
    def subscriptions_of(self, person_id: int) -> list[Subscription]:
        q = select(Subscription).where(Subscription.person_id == person_id)
        return list(self._s.exec(q.order_by(col(Subscription.id))))

    def subscriber(self, person_id: int) -> Subscriber | None:
        return self._s.get(Subscriber, person_id)

    def _subscriber_row(self, person_id: int) -> Subscriber:
        row = self._s.get(Subscriber, person_id)
        if row is None:
            row = Subscriber(person_id=person_id, updated_at=self.now())
            self._s.add(row)
        return row

    def subscribe(self, person_id: int, kode_kel: str, source: str = "pick") -> bool:
        """Add a kelurahan; False if the person already had it."""
        self._s.flush()  # a pending removal of the same kelurahan goes first
        row = {
            "person_id": person_id,
            "kode_kel": kode_kel,
            "source": source,
            "created_at": self.now(),
        }
        return insert_ignore(self._s, Subscription, row, ["person_id", "kode_kel"]) == 1

    def unsubscribe(self, person_id: int, kode_kel: str) -> bool:
        row = self._s.exec(
            select(Subscription).where(
                Subscription.person_id == person_id, Subscription.kode_kel == kode_kel
            )
        ).first()
        if row is None:
            return False
        self._s.delete(row)
        return True

    def unsubscribe_all(self, person_id: int) -> int:
        """Forget every kelurahan, the home point and the yes to announcements; returns how
        many of these there were."""
        rows = self.subscriptions_of(person_id)
        for row in rows:
            self._s.delete(row)
        sub = self._s.get(Subscriber, person_id)
        had = 0
        if sub is not None:
            had = (sub.home_lat is not None) + (sub.announcements_at is not None)
            sub.home_lat = sub.home_lon = None
            sub.home_kel = None
            sub.announcements_at = None
            sub.updated_at = self.now()
            self._s.add(sub)
        return len(rows) + had

    def set_home(self, person_id: int, lat: float, lon: float, kode_kel: str | None) -> None:
        row = self._subscriber_row(person_id)
        row.home_lat, row.home_lon, row.home_kel = lat, lon, kode_kel
        row.updated_at = self.now()
        self._s.add(row)

    def set_announcements(self, person_id: int, on: bool) -> bool:
        """The person's yes (or no) to the city's announcements; False if it was so already."""
        row = self._subscriber_row(person_id)
        if (row.announcements_at is not None) == on:
            return False
        row.announcements_at = self.now() if on else None
        row.updated_at = self.now()
        self._s.add(row)
        return True

    def offer_after_first_report(self, person_id: int, kode_kel: str) -> bool:
        """Record the one-time warnings offer when this was the person's first report and
        they have no warnings set up (no home point, not offered before, not following
        `kode_kel`); False if not."""
        self._s.flush()  # a pending Subscriber or Subscription must be written first
        held = sum(1 for r in self.uow.reports.values() if r.person_id == person_id)
        params = {"b_pid": person_id, "b_kel": kode_kel, "b_now": self.now(), "b_stored": 1 - held}
        return self._s.connection().execute(_OFFER_ONCE, params).first() is not None

    def subscriber_page(self, after_person_id: int, limit: int) -> list[SubscriberRow]:
        """Subscribers with person id > `after_person_id`, in id order."""
        ids_sub = select(Subscription.person_id).where(
            col(Subscription.person_id) > after_person_id
        )
        ids_home = select(Subscriber.person_id).where(
            col(Subscriber.person_id) > after_person_id,
            or_(
                col(Subscriber.home_lat).is_not(None),
                col(Subscriber.announcements_at).is_not(None),
            ),
        )
        union = ids_sub.union(ids_home).subquery()
        pid = union.c[0]
        ids = [int(r[0]) for r in self._s.execute(select(pid).order_by(pid).limit(limit))]
        if not ids:
            return []
        codes: dict[int, list[str]] = {i: [] for i in ids}
        for person_id, kel in self._s.execute(
            select(Subscription.person_id, Subscription.kode_kel).where(
                col(Subscription.person_id).in_(ids)
            )
        ):
            codes[int(person_id)].append(str(kel))
        homes: dict[int, tuple[float, float]] = {}
        announcements: set[int] = set()
        for person_id, lat, lon, since in self._s.execute(
            select(
                Subscriber.person_id,
                Subscriber.home_lat,
                Subscriber.home_lon,
                Subscriber.announcements_at,
            ).where(col(Subscriber.person_id).in_(ids))
        ):
            if lat is not None and lon is not None:
                homes[int(person_id)] = (float(lat), float(lon))
            if since is not None:
                announcements.add(int(person_id))
        return [SubscriberRow(i, codes[i], homes.get(i), i in announcements) for i in ids]

    def recipients_of(self, person_ids: Sequence[int]) -> dict[int, Recipient]:
        """person id → their language and active identities."""
        if not person_ids:
            return {}
        out: dict[int, Recipient] = {}
        langs: dict[int, str] = {
            int(pid): str(lang)
            for pid, lang in self._s.execute(
                select(Person.id, Person.language).where(col(Person.id).in_(list(person_ids)))
            )
        }
        rows = self._s.execute(
            select(
                ChannelIdentity.person_id,
                ChannelIdentity.id,
                ChannelIdentity.channel,
                ChannelIdentity.address,
            )
            .where(
                col(ChannelIdentity.person_id).in_(list(person_ids)),
                ChannelIdentity.active == True,  # noqa: E712
            )
            .order_by(col(ChannelIdentity.person_id), col(ChannelIdentity.id))
        )
        for person_id, ident_id, channel, address in rows:
            lang = str(langs.get(person_id) or "id")
            recipient = out.setdefault(int(person_id), Recipient(lang, []))
            recipient.identities.append(RecipientIdentity(ident_id, channel, address))
        return out

    # --- broadcasts -----------------------------------------------------------------------
    def add_broadcast(self, bc: Broadcast) -> Broadcast:
        self._s.add(bc)
        self._s.flush()
        return bc

    def broadcast(self, broadcast_id: int) -> Broadcast | None:
        return self._s.get(Broadcast, broadcast_id)

    def next_fanout(self) -> Broadcast | None:
        """The most urgent broadcast whose fan-out is due (warnings first, then oldest), locked
        for this transaction. On PostgreSQL one another process is fanning out right now is
        skipped (FOR UPDATE SKIP LOCKED): two processes write different broadcasts' batches
        instead of racing for one and throwing one batch away."""
        q = (
            select(Broadcast)
            .where(col(Broadcast.state).in_(BC_ACTIVE))
            .order_by(col(Broadcast.priority), col(Broadcast.id))
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        return self._s.exec(q).first()

    def broadcasts_in(self, states: Iterable[str]) -> list[Broadcast]:
        q = select(Broadcast).where(col(Broadcast.state).in_(list(states)))
        return list(self._s.exec(q.order_by(col(Broadcast.id))))

    def recent_broadcasts(self, limit: int = 5) -> list[Broadcast]:
        q = select(Broadcast).order_by(col(Broadcast.id).desc()).limit(limit)
        return list(self._s.exec(q))

    def advance_cursor(
        self, broadcast_id: int, old_cursor: int, new_cursor: int, recipients: int, messages: int
    ) -> bool:
        """Move the fan-out cursor if nobody else did and the broadcast is still running.

        The caller writes the batch's outbox rows in the same transaction and rolls back when
        this returns False, so a batch is written exactly once.
        """
        now = self.now()
        res = self._s.execute(
            update(Broadcast)
            .where(
                col(Broadcast.id) == broadcast_id,
                col(Broadcast.cursor) == old_cursor,
                col(Broadcast.state).in_(BC_ACTIVE),
            )
            .values(
                cursor=new_cursor,
                state=BC_FANNING,
                recipients=col(Broadcast.recipients) + recipients,
                messages=col(Broadcast.messages) + messages,
                started_at=func.coalesce(col(Broadcast.started_at), now),
            )
        )
        return bool(res.rowcount)  # type: ignore[attr-defined]

    def finish_fanout(self, broadcast_id: int, cursor: int) -> bool:
        res = self._s.execute(
            update(Broadcast)
            .where(
                col(Broadcast.id) == broadcast_id,
                col(Broadcast.cursor) == cursor,
                col(Broadcast.state).in_(BC_ACTIVE),
            )
            .values(
                state=BC_SENDING,
                fanned_at=self.now(),
                started_at=func.coalesce(col(Broadcast.started_at), self.now()),
            )
        )
        return bool(res.rowcount)  # type: ignore[attr-defined]

    def start_scheduled(self, broadcast_id: int) -> bool:
        res = self._s.execute(
            update(Broadcast)
            .where(col(Broadcast.id) == broadcast_id, col(Broadcast.state) == BC_SCHEDULED)
            .values(state=BC_QUEUED)
        )
        return bool(res.rowcount)  # type: ignore[attr-defined]

    def cancel_broadcast(self, broadcast_id: int) -> int | None:
        """Stop a broadcast: its queued messages are cancelled, its schedule dropped.

        Returns how many queued messages were cancelled, or None if it had already ended.
        """
        bc = self._s.get(Broadcast, broadcast_id)
        if bc is None or bc.state in (BC_DONE, BC_CANCELLED):
            return None
        bc.state = BC_CANCELLED
        bc.finished_at = self.now()
        self._s.add(bc)
        if bc.job_id is not None:
            job = self._s.get(ScheduledJob, bc.job_id)
            if job is not None and job.done_at is None:
                job.cancelled = True
                self._s.add(job)
        res = self._s.execute(
            update(OutboxItem)
            .where(col(OutboxItem.broadcast_id) == broadcast_id, col(OutboxItem.state) == "pending")
            .values(state="cancelled", error="broadcast cancelled")
        )
        return int(res.rowcount or 0)  # type: ignore[attr-defined]

    def finish_sent_broadcasts(self) -> list[int]:
        """`sending` broadcasts with nothing left in the outbox become `done`."""
        done = []
        for bc in self.broadcasts_in([BC_SENDING]):
            assert bc.id is not None
            left = self._s.exec(
                select(func.count())
                .select_from(OutboxItem)
                .where(
                    OutboxItem.broadcast_id == bc.id,
                    or_(col(OutboxItem.state) == "pending", col(OutboxItem.state) == "sending"),
                )
            ).one()
            if not left:
                bc.state = BC_DONE
                bc.finished_at = self.now()
                self._s.add(bc)
                done.append(bc.id)
        return done

    def broadcast_counts(self, broadcast_id: int) -> dict[str, int]:
        rows = self._s.exec(
            select(OutboxItem.state, func.count())
            .where(OutboxItem.broadcast_id == broadcast_id)
            .group_by(OutboxItem.state)
        )
        return {str(state): int(n) for state, n in rows}

    def broadcast_sent_since(self, broadcast_id: int, since: datetime) -> int:
        return int(
            self._s.exec(
                select(func.count())
                .select_from(OutboxItem)
                .where(
                    OutboxItem.broadcast_id == broadcast_id,
                    OutboxItem.state == "sent",
                    col(OutboxItem.sent_at) >= since,
                )
            ).one()
        )

    # --- sensors ------------------------------------------------------------------------------
    def sensor_state(self, sensor_id: str) -> SensorStateRow | None:
        return self._s.get(SensorStateRow, sensor_id)

    def sensor_state_for_update(self, sensor_id: str, now: datetime) -> SensorStateRow:
        """The row, locked for this transaction on PostgreSQL (created on first use)."""
        row = self._s.exec(
            select(SensorStateRow).where(SensorStateRow.sensor_id == sensor_id).with_for_update()
        ).first()
        if row is None:
            new = {"sensor_id": sensor_id, "state": {}, "monitoring_since": now, "updated_at": now}
            insert_ignore(self._s, SensorStateRow, new, ["sensor_id"])
            return self.sensor_state_for_update(sensor_id, now)
        return row

    def save_sensor_state(self, row: SensorStateRow) -> None:
        row.updated_at = self.now()
        self._s.add(row)

    def add_level_change(self, change: SensorLevelChange) -> SensorLevelChange:
        self._s.add(change)
        self._s.flush()
        return change

    def level_changes(self, sensor_id: str | None = None) -> list[SensorLevelChange]:
        q = select(SensorLevelChange)
        if sensor_id is not None:
            q = q.where(SensorLevelChange.sensor_id == sensor_id)
        return list(self._s.exec(q.order_by(col(SensorLevelChange.id))))

    # --- published warnings (CAP out) ------------------------------------------------------
    def add_published_warning(self, row: PublishedWarning) -> PublishedWarning:
        self._s.add(row)
        self._s.flush()
        return row

    def published_warning(self, warning_id: int) -> PublishedWarning | None:
        return self._s.get(PublishedWarning, warning_id)

    def published_warnings(self, limit: int = 50) -> list[PublishedWarning]:
        q = select(PublishedWarning).order_by(col(PublishedWarning.id).desc()).limit(limit)
        return list(self._s.exec(q))

    # --- outside events handled once ---------------------------------------------------------
    def mark_processed(self, source: str, key: str, broadcast_id: int | None = None) -> bool:
        """True the first time (source, key) is seen."""
        row = {"source": source, "key": key, "broadcast_id": broadcast_id, "created_at": self.now()}
        return insert_ignore(self._s, ProcessedEvent, row, ["source", "key"]) == 1

    def is_processed(self, source: str, key: str) -> bool:
        return self._s.get(ProcessedEvent, (source, key)) is not None

    def processed_keys(self, source: str, limit: int = 1000) -> list[str]:
        q = (
            select(ProcessedEvent.key)
            .where(ProcessedEvent.source == source)
            .order_by(col(ProcessedEvent.created_at).desc())
            .limit(limit)
        )
        return list(reversed(list(self._s.exec(q))))

    # --- admins --------------------------------------------------------------------------------
    def is_admin(self, person_id: int) -> bool:
        row = self._s.exec(select(Staff).where(Staff.person_id == person_id)).first()
        return row is not None and row.role == ROLE_ADMIN

    def admin_person_ids(self) -> list[int]:
        q = select(Staff.person_id).where(Staff.role == ROLE_ADMIN)
        return [int(p) for p in self._s.exec(q.order_by(col(Staff.person_id)))]
