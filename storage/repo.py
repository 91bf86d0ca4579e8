"""All SQL of the core lives here.  A `Repo` wraps one session (= one transaction)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import BigInteger, String, Table, bindparam, func, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.session import make_transient_to_detached
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, SQLModel, col, select

from storage.db import utcnow
from storage.models import (
    AreaPolygon,
    ChannelIdentity,
    Conversation,
    Counter,
    InboxItem,
    OutboxItem,
    Person,
    Photo,
    Report,
    ReportEvent,
    ScheduledJob,
    Staff,
)

# --- hot-path statements -----------------------------------------------------------------
# Every update runs these; built once and run with Core, not the ORM: no identity map, no unit
# of work, plain rows back. SQLAlchemy caches their compiled form, except for the dialect
# `INSERT … ON CONFLICT` ones (compiled on each call): only the inbox's replay fallback.
_IN = cast(Table, InboxItem.__table__)  # type: ignore[attr-defined]
_OUT = cast(Table, OutboxItem.__table__)  # type: ignore[attr-defined]
_CONV = cast(Table, Conversation.__table__)  # type: ignore[attr-defined]
_IDENT = cast(Table, ChannelIdentity.__table__)  # type: ignore[attr-defined]
_PERSON = cast(Table, Person.__table__)  # type: ignore[attr-defined]

_WHO = (
    core_select(
        _IDENT.c.id,
        _IDENT.c.person_id,
        _IDENT.c.channel,
        _IDENT.c.external_id,
        _IDENT.c.address,
        _IDENT.c.active,
        _IDENT.c.last_inbound_at,
        _PERSON.c.language,
        _PERSON.c.display_name,
        _PERSON.c.phone,
        _PERSON.c.share_contact,
    )
    .join_from(_IDENT, _PERSON, _PERSON.c.id == _IDENT.c.person_id)
    .where(_IDENT.c.channel == bindparam("b_channel"), _IDENT.c.external_id == bindparam("b_ext"))
)
# A round of updates (bot/inbox.py) reads all its senders, their people and their
# conversations in one statement; callers keep the rows whose channel matches.
_WHO_MANY = (
    core_select(*_WHO.selected_columns, _CONV.c.step, _CONV.c.data)
    .join_from(_IDENT, _PERSON, _PERSON.c.id == _IDENT.c.person_id)
    .outerjoin(_CONV, _CONV.c.identity_id == _IDENT.c.id)
    .where(_IDENT.c.external_id.in_(bindparam("b_exts", expanding=True)))
)
_PERSON_INSERT = _PERSON.insert().returning(_PERSON.c.id)
# Batches (newcomers of a round): ids come back in the order of the rows given.
_PERSON_INSERT_MANY = _PERSON.insert().returning(_PERSON.c.id, sort_by_parameter_order=True)
_PERSON_GET = core_select(
    _PERSON.c.id,
    _PERSON.c.language,
    _PERSON.c.display_name,
    _PERSON.c.phone,
    _PERSON.c.share_contact,
).where(_PERSON.c.id == bindparam("b_id"))
_COUNTER = cast(Table, Counter.__table__)  # type: ignore[attr-defined]
_COUNTER_ADD = (
    update(_COUNTER)
    .where(_COUNTER.c.name == bindparam("b_name"))
    .values(value=_COUNTER.c.value + bindparam("b_by"))
    .returning(_COUNTER.c.value)
)
_COUNTER_SET = (
    update(_COUNTER)
    .where(_COUNTER.c.name == bindparam("b_name"))
    .values(value=bindparam("b_value"))
)
_IDENT_INSERT = _IDENT.insert().returning(_IDENT.c.id)
_IDENT_INSERT_MANY = _IDENT.insert().returning(_IDENT.c.id, sort_by_parameter_order=True)

_INBOX_PENDING = (
    core_select(_IN.c.id, _IN.c.channel, _IN.c.payload, _IN.c.sender_key)
    .where(_IN.c.processed_at.is_(None))
    .order_by(_IN.c.id)
    .limit(bindparam("b_limit"))
)
# One executemany (batched by SQLAlchemy's insertmanyvalues) for a long-poll batch;
# a replayed update is dropped by the unique (channel, dedupe_key) itself. RETURNING tells
# which were new (psycopg's pipelined executemany gives no row count).
_INBOX_ACCEPT_PG = (
    pg_insert(_IN)
    .on_conflict_do_nothing(index_elements=["channel", "dedupe_key"])
    .returning(_IN.c.id)
)
_INBOX_ACCEPT_SQLITE = (
    sqlite_insert(_IN)
    .on_conflict_do_nothing(index_elements=["channel", "dedupe_key"])
    .returning(_IN.c.id)
)
_INBOX_INSERT = _IN.insert()
_INBOX_TAKE = (
    update(_IN)
    .where(_IN.c.id == bindparam("b_id"), _IN.c.processed_at.is_(None))
    .values(processed_at=bindparam("b_now"))
)
_INBOX_TAKE_MANY = (
    update(_IN)
    .where(_IN.c.id.in_(bindparam("b_ids", expanding=True)), _IN.c.processed_at.is_(None))
    .values(processed_at=bindparam("b_now"))
    .returning(_IN.c.id)
)
_CONV_GET = core_select(_CONV.c.step, _CONV.c.data).where(_CONV.c.identity_id == bindparam("b_id"))
_CONV_UPDATE = (
    update(_CONV)
    .where(_CONV.c.identity_id == bindparam("b_id"))
    .values(step=bindparam("b_step"), data=bindparam("b_data"), updated_at=bindparam("b_now"))
)
_CONV_INSERT = _CONV.insert().values(
    identity_id=bindparam("b_id"),
    step=bindparam("b_step"),
    data=bindparam("b_data"),
    updated_at=bindparam("b_now"),
)
_CONV_DELETE = _CONV.delete().where(_CONV.c.identity_id == bindparam("b_id"))
_CONV_DELETE_MANY = _CONV.delete().where(
    _CONV.c.identity_id.in_(bindparam("b_ids", expanding=True))
)
_IDENT_INACTIVE = core_select(_IDENT.c.id).where(
    _IDENT.c.id.in_(bindparam("b_ids", expanding=True)), _IDENT.c.active.is_(False)
)
# A plain executemany: psycopg sends it in pipeline mode (one round trip). Measured against
# SQLAlchemy's multi-row "insertmanyvalues" form (what RETURNING would turn on): half the CPU
# on PostgreSQL (its long statement text is parsed again each time), the same on SQLite.
_OUTBOX_INSERT = _OUT.insert()
_OUTBOX_DUE = (
    core_select(
        _OUT.c.id,
        _OUT.c.channel,
        _OUT.c.address,
        _OUT.c.identity_id,
        _OUT.c.kind,
        _OUT.c.priority,
        _OUT.c.payload,
        _OUT.c.meta,
        _OUT.c.attempts,
        _OUT.c.broadcast_id,
    )
    .where(
        _OUT.c.state == "pending",
        _OUT.c.next_attempt_at <= bindparam("b_now"),
        _OUT.c.channel.in_(bindparam("b_channels", expanding=True)),
        _OUT.c.id > bindparam("b_after"),
    )
    .order_by(_OUT.c.priority, _OUT.c.id)
    .limit(bindparam("b_limit"))
)
_OUTBOX_CLAIM = (
    update(_OUT)
    .where(_OUT.c.id.in_(bindparam("b_ids", expanding=True)), _OUT.c.state == "pending")
    .values(state="sending")
    .returning(_OUT.c.id)
)
_OUTBOX_SENT = (
    update(_OUT)
    .where(_OUT.c.id == bindparam("b_id"))
    .values(
        state="sent",
        platform_message_id=bindparam("b_msg"),
        sent_at=bindparam("b_at"),
        attempts=_OUT.c.attempts + 1,
        error=None,
    )
)
# PostgreSQL: the same for a whole batch in one statement (arrays unnested into a VALUES-like
# table), so one round trip instead of a statement per row.
_SENT_ROWS = core_select(
    func.unnest(bindparam("b_ids", type_=ARRAY(BigInteger))).label("id"),
    func.unnest(bindparam("b_msgs", type_=ARRAY(String))).label("msg"),
).subquery("sent_rows")
_OUTBOX_SENT_PG = (
    update(_OUT)
    .where(_OUT.c.id == _SENT_ROWS.c.id)
    .values(
        state="sent",
        platform_message_id=_SENT_ROWS.c.msg,
        sent_at=bindparam("b_at"),
        attempts=_OUT.c.attempts + 1,
        error=None,
    )
)


@dataclass(slots=True)
class IdentityView:
    """A channel identity as the conversation core sees it (read with Core, not the ORM)."""

    id: int
    person_id: int
    channel: str
    external_id: str
    address: str
    active: bool
    last_inbound_at: datetime | None

    @classmethod
    def of(cls, ident: ChannelIdentity) -> IdentityView:
        assert ident.id is not None
        return cls(
            ident.id,
            ident.person_id,
            ident.channel,
            ident.external_id,
            ident.address,
            ident.active,
            ident.last_inbound_at,
        )


@dataclass(slots=True)
class PersonView:
    """The person behind an identity; change it through `Repo`, not by assignment."""

    id: int
    language: str
    display_name: str | None
    phone: str | None
    share_contact: bool

    @classmethod
    def of(cls, person: Person) -> PersonView:
        assert person.id is not None
        return cls(
            person.id, person.language, person.display_name, person.phone, person.share_contact
        )


@dataclass(slots=True)
class DueMessage:
    """An outbox row as the sender needs it (read with Core: no ORM object per message)."""

    id: int
    channel: str
    address: str
    identity_id: int | None
    kind: str
    priority: int
    payload: dict[str, Any]
    meta: dict[str, Any]
    attempts: int
    broadcast_id: int | None


def _inbox_rows(
    channel: str, items: Sequence[tuple[str, dict[str, Any], str | None]]
) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {
            "channel": channel,
            "dedupe_key": key,
            "sender_key": sender,
            "payload": payload,
            "received_at": now,
            "attempts": 0,
        }
        for key, payload, sender in items
    ]


_ROUND = "lapor.round"  # key in Session.info


@dataclass(slots=True, frozen=True)
class NewIdentity:
    """Someone writing for the first time: what their person and identity start with."""

    channel: str
    external_id: str
    address: str
    language: str
    display_name: str | None = None
    phone: str | None = None


def copy_json(data: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of JSON data (what a JSON column would give back)."""
    return cast(dict[str, Any], json.loads(json.dumps(data)))


@dataclass(slots=True)
class _Round:
    """What a round of updates read up front, and the conversation writes it holds back.

    Lives in `Session.info`, so every `Repo` on that session shares it; it ends (and its
    writes go out) with `Repo.end_round()` before the commit.
    """

    who: dict[tuple[str, str], tuple[IdentityView, PersonView] | None]  # None: never wrote
    conv: dict[int, tuple[str, dict[str, Any]] | None]  # identity id → known state
    dirty: dict[int, tuple[str, dict[str, Any], datetime] | None]  # None: delete
    # identity id → whether the database held a conversation row when the round read it
    stored: dict[int, bool] = field(default_factory=dict)
    # Rarely changing rows read again and again in a round (an OPD's queue group and
    # officers); a write to them clears it (`Repo.forget`).
    memo: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    # Counters (report codes): numbers reserved in one UPDATE for the round, as
    # name → [last used, top]; end_round gives back the unused ones.
    seq: dict[str, list[int]] = field(default_factory=dict)
    size: int = 1  # senders in the round: how many numbers a reservation takes
    created: set[tuple[str, str]] = field(default_factory=set)  # newcomers made up front


_NEW_REPORTS = "lapor.new_reports"  # Session.info: {report id: its photos} made in this session


def _insert_stmt(model: type[SQLModel]) -> tuple[Any, Any]:
    table = cast(Table, model.__table__)  # type: ignore[attr-defined]
    (pk,) = table.primary_key.columns  # single-column keys only
    return table.insert().returning(pk), pk


# Built once per model on first use (SQLAlchemy then reuses the compiled form).
_INSERTS: dict[type[SQLModel], tuple[Any, Any]] = {}


class Repo:
    def __init__(self, session: Session) -> None:
        self.s = session
        # Identities this transaction saw write to us (so they are active): replies to them
        # need no "has this person blocked the bot?" query.
        self.known_active: set[int] = set()

    # --- a round of updates (one transaction for many senders) ----------------------------
    def begin_round(self, keys: Sequence[tuple[str, str]]) -> None:
        """Read the senders `(channel, external_id)` of a round, with their people and
        conversations, in one statement; until `end_round()` the conversation writes of this
        session are kept in memory and written together.

        Only for a transaction without savepoints: a rolled-back savepoint would not undo the
        held writes.
        """
        wanted = set(keys)
        rnd = _Round(dict.fromkeys(wanted), {}, {}, size=max(1, len(wanted)))
        if wanted:
            rows = self.s.connection().execute(
                _WHO_MANY, {"b_exts": sorted({ext for _ch, ext in wanted})}
            )
            for row in rows:
                key = (row[2], row[3])
                if key not in wanted:
                    continue
                ident = IdentityView(*row[:7])
                rnd.who[key] = (ident, PersonView(ident.person_id, *row[7:11]))
                rnd.conv[ident.id] = None if row[11] is None else (row[11], dict(row[12] or {}))
                rnd.stored[ident.id] = row[11] is not None
        self.s.info[_ROUND] = rnd

    def unknown(self, channel: str, external_id: str) -> bool:
        """In a round: this sender has never written (known from `begin_round`'s read)."""
        rnd = self._round()
        key = (channel, external_id)
        return rnd is not None and key in rnd.who and rnd.who[key] is None

    def create_newcomers(self, people: Sequence[NewIdentity]) -> None:
        """In a round: create the people and identities of first-time senders together (two
        statements, not two per person); `get_or_create_identity` then finds them as new."""
        rnd = self._round()
        assert rnd is not None, "create_newcomers belongs to a round"
        if not people:
            return
        now = utcnow()
        conn = self.s.connection()
        names = [(p.display_name or None) and p.display_name[:128] for p in people]
        phones = [p.phone and p.phone[:32] for p in people]
        person_ids = [
            int(r[0])
            for r in conn.execute(
                _PERSON_INSERT_MANY,
                [
                    {
                        "language": p.language,
                        "display_name": name,
                        "phone": phone,
                        "share_contact": False,
                        "created_at": now,
                    }
                    for p, name, phone in zip(people, names, phones, strict=True)
                ],
            )
        ]
        ident_ids = [
            int(r[0])
            for r in conn.execute(
                _IDENT_INSERT_MANY,
                [
                    {
                        "person_id": pid,
                        "channel": p.channel,
                        "external_id": p.external_id,
                        "address": p.address,
                        "active": True,
                        "last_inbound_at": now,
                        "created_at": now,
                    }
                    for p, pid in zip(people, person_ids, strict=True)
                ],
            )
        ]
        for p, pid, iid, name, phone in zip(
            people, person_ids, ident_ids, names, phones, strict=True
        ):
            key = (p.channel, p.external_id)
            rnd.who[key] = (
                IdentityView(iid, pid, p.channel, p.external_id, p.address, True, now),
                PersonView(pid, p.language, name, phone, False),
            )
            rnd.conv[iid] = None
            rnd.stored[iid] = False
            rnd.created.add(key)
            self.known_active.add(iid)

    def end_round(self) -> None:
        """Write the round's conversation changes (one DELETE, one UPDATE and one INSERT
        executemany) and give back the counter numbers it reserved but did not use."""
        rnd: _Round | None = self.s.info.pop(_ROUND, None)
        if rnd is None:
            return
        conn = self.s.connection()
        for name, (used, top) in rnd.seq.items():
            if used < top:  # still ours (the row stayed locked): the next round goes on from here
                conn.execute(_COUNTER_SET, {"b_name": name, "b_value": used})
        if not rnd.dirty:
            return
        gone = [i for i, v in rnd.dirty.items() if v is None]
        if gone:
            conn.execute(_CONV_DELETE_MANY, {"b_ids": gone})
        # Rows the round saw exist are UPDATEd, rows it saw missing are INSERTed (plain
        # statements SQLAlchemy caches, sent as pipelined executemany); a conversation the
        # round never read (rare: another identity's) is written as outside a round.
        updates: list[dict[str, Any]] = []
        inserts: list[dict[str, Any]] = []
        for i, v in rnd.dirty.items():
            if v is None:
                continue
            stored = rnd.stored.get(i)
            if stored is None:
                self._write_conversation(i, *v)
            else:
                (updates if stored else inserts).append(
                    {"b_id": i, "b_step": v[0], "b_data": v[1], "b_now": v[2]}
                )
        if updates:
            conn.execute(_CONV_UPDATE, updates)
        if inserts:
            conn.execute(_CONV_INSERT, inserts)

    def _round(self) -> _Round | None:
        return self.s.info.get(_ROUND)

    def memo(self) -> dict[tuple[Any, ...], Any] | None:
        """The round's cache of rarely changing rows (None outside a round)."""
        rnd = self._round()
        return None if rnd is None else rnd.memo

    def forget(self) -> None:
        """A write to staff or queue groups: what the round remembered of them is stale."""
        rnd = self._round()
        if rnd is not None:
            rnd.memo.clear()

    def insert_attached(self, obj: SQLModel) -> None:
        """INSERT a new row with Core (no unit of work), then attach `obj` to the session as
        persistent with the values written: later changes to it are UPDATEs, as after a flush.
        """
        model = type(obj)
        if model not in _INSERTS:
            _INSERTS[model] = _insert_stmt(model)
        stmt, pk = _INSERTS[model]
        table = pk.table
        values = {c.key: getattr(obj, c.key) for c in table.columns}
        if values.get(pk.key) is None:
            del values[pk.key]
        setattr(obj, pk.key, self.s.connection().execute(stmt, values).scalar_one())
        make_transient_to_detached(obj)
        self.s.add(obj)

    def person_view(self, person_id: int) -> PersonView | None:
        """A person as the core sees it; from the round when it read them already."""
        rnd = self._round()
        if rnd is not None:
            for found in rnd.who.values():
                if found is not None and found[1].id == person_id:
                    return found[1]
        row = self.s.connection().execute(_PERSON_GET, {"b_id": person_id}).first()
        return None if row is None else PersonView(*row)

    # --- people and identities ----------------------------------------------------------
    def identity(self, channel: str, external_id: str) -> ChannelIdentity | None:
        return self.s.exec(
            select(ChannelIdentity).where(
                ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id
            )
        ).first()

    def identity_by_id(self, identity_id: int) -> ChannelIdentity | None:
        return self.s.get(ChannelIdentity, identity_id)

    def person(self, person_id: int) -> Person | None:
        return self.s.get(Person, person_id)

    def get_or_create_identity(
        self,
        channel: str,
        external_id: str,
        address: str,
        *,
        language: str,
        display_name: str | None = None,
        phone: str | None = None,
    ) -> tuple[IdentityView, PersonView, bool]:
        """The identity for (channel, external_id), creating a person for a newcomer.

        Runs on every update, so it is Core SQL: one SELECT, and an UPDATE only when
        something changed (`last_inbound_at` at most once a minute).
        """
        now = utcnow()
        conn = self.s.connection()
        rnd = self._round()
        found = self._who(channel, external_id, rnd)
        if found is not None and rnd is not None and (channel, external_id) in rnd.created:
            rnd.created.discard((channel, external_id))  # made by create_newcomers just now
            return (*found, True)
        if found is not None:
            ident, person = found
            changes: dict[str, Any] = {}
            last = ident.last_inbound_at
            if last is None or (now - last).total_seconds() > 60:
                changes["last_inbound_at"] = ident.last_inbound_at = now
            if not ident.active:
                changes["active"] = ident.active = True  # writing to us again undoes "blocked"
            if ident.address != address:
                changes["address"] = ident.address = address
            if changes:
                conn.execute(update(_IDENT).where(_IDENT.c.id == ident.id).values(**changes))
            self.known_active.add(ident.id)
            pchanges: dict[str, Any] = {}
            if display_name and person.display_name != display_name[:128]:
                pchanges["display_name"] = person.display_name = display_name[:128]
            if phone and person.phone != phone[:32]:
                pchanges["phone"] = person.phone = phone[:32]
            if pchanges:
                conn.execute(update(_PERSON).where(_PERSON.c.id == person.id).values(**pchanges))
            return ident, person, False
        name = (display_name or None) and display_name[:128]
        person_id = conn.execute(
            _PERSON_INSERT,
            {
                "language": language,
                "display_name": name,
                "phone": phone,
                "share_contact": False,
                "created_at": now,
            },
        ).scalar_one()
        ident_id = conn.execute(
            _IDENT_INSERT,
            {
                "person_id": person_id,
                "channel": channel,
                "external_id": external_id,
                "address": address,
                "active": True,
                "last_inbound_at": now,
                "created_at": now,
            },
        ).scalar_one()
        self.known_active.add(ident_id)
        new = (
            IdentityView(ident_id, person_id, channel, external_id, address, True, now),
            PersonView(person_id, language, name, phone, False),
        )
        if rnd is not None:
            rnd.who[(channel, external_id)] = new
            rnd.conv[ident_id] = None
            rnd.stored[ident_id] = False
        return (*new, True)

    def _who(
        self, channel: str, external_id: str, rnd: _Round | None
    ) -> tuple[IdentityView, PersonView] | None:
        if rnd is not None and (channel, external_id) in rnd.who:
            return rnd.who[(channel, external_id)]
        row = (
            self.s.connection().execute(_WHO, {"b_channel": channel, "b_ext": external_id}).first()
        )
        if row is None:
            return None
        found = IdentityView(*row[:7]), PersonView(row[1], *row[7:])
        if rnd is not None:
            rnd.who[(channel, external_id)] = found
        return found

    def who(self, channel: str, external_id: str) -> tuple[IdentityView, PersonView] | None:
        """Identity and person, read only; None for someone who never wrote."""
        return self._who(channel, external_id, self._round())

    def identities_of(self, person_id: int, *, active_only: bool = True) -> list[ChannelIdentity]:
        q = select(ChannelIdentity).where(ChannelIdentity.person_id == person_id)
        if active_only:
            q = q.where(ChannelIdentity.active == True)  # noqa: E712
        return list(self.s.exec(q.order_by(col(ChannelIdentity.last_inbound_at).desc())))

    def set_language(self, person: PersonView, language: str) -> None:
        person.language = language
        self.s.connection().execute(
            update(_PERSON).where(_PERSON.c.id == person.id).values(language=language)
        )

    def deactivate_identity(self, identity_id: int) -> None:
        self.known_active.discard(identity_id)
        self.s.flush()  # an ORM change to this row must not overwrite ours later
        self.s.connection().execute(
            update(_IDENT).where(_IDENT.c.id == identity_id).values(active=False)
        )
        ident = self.s.identity_map.get(identity_key(ChannelIdentity, identity_id))
        if ident is not None:  # keep a loaded object in step without writing it again
            set_committed_value(ident, "active", False)

    # --- staff roles ------------------------------------------------------------------------
    def staff(self, person_id: int) -> Staff | None:
        return self.s.exec(select(Staff).where(Staff.person_id == person_id)).first()

    def set_staff(self, person_id: int, role: str, opd: str | None) -> Staff:
        row = self.staff(person_id)
        if row is None:
            row = Staff(person_id=person_id, role=role, opd=opd, created_at=utcnow())
        else:
            row.role, row.opd = role, opd
        self.s.add(row)
        self.s.flush()
        self.forget()
        return row

    def remove_staff(self, person_id: int) -> bool:
        row = self.staff(person_id)
        if row is None:
            return False
        self.s.delete(row)
        self.forget()
        return True

    def staff_list(self, opd: str | None = None, role: str | None = None) -> list[Staff]:
        q = select(Staff)
        if opd is not None:
            q = q.where(Staff.opd == opd)
        if role is not None:
            q = q.where(Staff.role == role)
        return list(self.s.exec(q.order_by(col(Staff.id))))

    # --- conversation state -------------------------------------------------------------
    def conversation_state(self, identity_id: int) -> tuple[str, dict[str, Any]] | None:
        """(step, draft data) of one identity's conversation, None without one."""
        rnd = self._round()
        if rnd is not None and identity_id in rnd.conv:
            known = rnd.conv[identity_id]
            return None if known is None else (known[0], copy_json(known[1]))
        row = self.s.connection().execute(_CONV_GET, {"b_id": identity_id}).first()
        state = None if row is None else (row[0], dict(row[1] or {}))
        if rnd is not None:
            rnd.conv[identity_id] = None if state is None else (state[0], copy_json(state[1]))
            rnd.stored[identity_id] = state is not None
        return state

    def save_conversation(self, identity_id: int, step: str, data: dict[str, Any]) -> None:
        now = utcnow()
        rnd = self._round()
        if rnd is not None:  # held until end_round(); a snapshot, as the database would keep
            snapshot = copy_json(data)
            rnd.conv[identity_id] = (step, snapshot)
            rnd.dirty[identity_id] = (step, snapshot, now)
            return
        self._write_conversation(identity_id, step, data, now)

    def _write_conversation(
        self, identity_id: int, step: str, data: dict[str, Any], now: datetime
    ) -> None:
        """UPDATE the row, INSERT it if there was none."""
        conn = self.s.connection()
        row = {"b_id": identity_id, "b_step": step, "b_data": data, "b_now": now}
        if not conn.execute(_CONV_UPDATE, row).rowcount:
            conn.execute(_CONV_INSERT, row)

    def clear_conversation(self, identity_id: int) -> None:
        rnd = self._round()
        if rnd is not None:
            rnd.conv[identity_id] = None
            rnd.dirty[identity_id] = None
            return
        self.s.connection().execute(_CONV_DELETE, {"b_id": identity_id})

    # --- reports --------------------------------------------------------------------------
    def next_sequence(self, name: str) -> int:
        """Increment and return a named counter inside the current transaction.

        In a round the first call reserves a number for every sender of the round with one
        UPDATE (the row stays locked until the commit, so the block is ours) and later calls
        take from it; `end_round` gives back what is left, so numbers have no gaps."""
        rnd = self._round()
        if rnd is None:
            return self._advance(name, 1)
        block = rnd.seq.get(name)
        if block is None or block[0] >= block[1]:
            top = self._advance(name, rnd.size)
            block = rnd.seq[name] = [top - rnd.size, top]
        block[0] += 1
        return block[0]

    def _advance(self, name: str, by: int) -> int:
        """Add `by` to a counter (creating it) and return its new value."""
        result = self.s.connection().execute(_COUNTER_ADD, {"b_name": name, "b_by": by}).first()
        if result is not None:
            return int(result[0])
        try:
            with self.s.begin_nested():
                self.s.add(Counter(name=name, value=by))
            return by
        except IntegrityError:  # created concurrently: add to theirs
            return self._advance(name, by)

    def add_report(self, report: Report) -> Report:
        self.insert_attached(report)
        assert report.id is not None
        self.s.info.setdefault(_NEW_REPORTS, {})[report.id] = []
        return report

    def report(self, report_id: int) -> Report | None:
        return self.s.get(Report, report_id)

    def report_by_code(self, code: str) -> Report | None:
        return self.s.exec(select(Report).where(Report.code == code.upper())).first()

    def reports_of(self, person_id: int, limit: int = 10) -> list[Report]:
        q = (
            select(Report)
            .where(Report.person_id == person_id)
            .order_by(col(Report.created_at).desc(), col(Report.id).desc())
            .limit(limit)
        )
        return list(self.s.exec(q))

    def add_event(self, event: ReportEvent) -> ReportEvent:
        self.insert_attached(event)
        return event

    def events(self, report_id: int, *, include_internal: bool = False) -> list[ReportEvent]:
        q = select(ReportEvent).where(ReportEvent.report_id == report_id)
        if not include_internal:
            q = q.where(ReportEvent.internal == False)  # noqa: E712
        return list(self.s.exec(q.order_by(col(ReportEvent.created_at), col(ReportEvent.id))))

    def add_photo(self, photo: Photo) -> Photo:
        self.insert_attached(photo)
        new = self.s.info.get(_NEW_REPORTS, {}).get(photo.report_id)
        if new is not None:
            new.append(photo)
        return photo

    def photos(self, report_id: int, role: str | None = None) -> list[Photo]:
        new = self.s.info.get(_NEW_REPORTS, {}).get(report_id)
        if new is not None:  # made in this transaction: every photo went through add_photo
            return [p for p in new if not role or p.role == role]
        q = select(Photo).where(Photo.report_id == report_id)
        if role:
            q = q.where(Photo.role == role)
        return list(self.s.exec(q.order_by(col(Photo.id))))

    # --- inbox ------------------------------------------------------------------------------
    def inbox_accept(
        self, channel: str, key: str, payload: dict[str, Any], sender_key: str | None = None
    ) -> bool:
        """Store a raw update; False when (channel, key) is already there."""
        try:
            with self.s.begin_nested():
                self.s.add(
                    InboxItem(
                        channel=channel,
                        dedupe_key=key,
                        sender_key=sender_key,
                        payload=payload,
                        received_at=utcnow(),
                    )
                )
            return True
        except IntegrityError:
            return False

    def inbox_insert_new(
        self, channel: str, items: Sequence[tuple[str, dict[str, Any], str | None]]
    ) -> int:
        """Store a batch that should hold no replay (the common case): a plain executemany,
        which SQLAlchemy caches and psycopg pipelines. A replayed key raises IntegrityError;
        the caller then rolls back and uses `inbox_accept_many`."""
        if not items:
            return 0
        self.s.connection().execute(_INBOX_INSERT, _inbox_rows(channel, items))
        return len(items)

    def inbox_accept_many(
        self, channel: str, items: Sequence[tuple[str, dict[str, Any], str | None]]
    ) -> int:
        """Store a batch of (key, payload, sender_key) in one statement; count of new ones.

        `INSERT ... ON CONFLICT DO NOTHING` on the unique (channel, dedupe_key): a replayed
        update is dropped by the database itself.
        """
        if not items:
            return 0
        conn = self.s.connection()
        stmt = _INBOX_ACCEPT_PG if conn.dialect.name == "postgresql" else _INBOX_ACCEPT_SQLITE
        return len(conn.execute(stmt, _inbox_rows(channel, items)).all())

    def inbox_pending(self, limit: int = 100) -> list[tuple[int, str, dict[str, Any], str | None]]:
        """(id, channel, payload, sender_key) of unhandled items, oldest first."""
        rows = self.s.connection().execute(_INBOX_PENDING, {"b_limit": limit})
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def inbox_item(self, item_id: int) -> InboxItem | None:
        return self.s.get(InboxItem, item_id)

    def inbox_take(self, item_id: int) -> bool:
        """Mark an item processed at the start of the transaction that handles it.

        The conditional UPDATE locks the row: a second transaction trying the same item
        waits, then sees it taken (PostgreSQL) or fails to write (SQLite), so an update's
        effects are committed once even if two workers race.
        """
        res = self.s.connection().execute(_INBOX_TAKE, {"b_id": item_id, "b_now": utcnow()})
        return bool(res.rowcount)

    def inbox_take_many(self, item_ids: Sequence[int]) -> set[int]:
        """`inbox_take` for a group in one statement; the ids this transaction took."""
        if not item_ids:
            return set()
        rows = self.s.connection().execute(
            _INBOX_TAKE_MANY, {"b_ids": list(item_ids), "b_now": utcnow()}
        )
        return {int(r[0]) for r in rows}

    def inbox_mark_processed(self, item_id: int, error: str | None = None) -> None:
        item = self.s.get(InboxItem, item_id)
        if item is not None:
            item.processed_at = utcnow()
            item.error = error[:500] if error else None
            self.s.add(item)

    def inbox_record_failure(self, item_id: int, error: str) -> int:
        item = self.s.get(InboxItem, item_id)
        if item is None:
            return 0
        item.attempts += 1
        item.error = error[:500]
        self.s.add(item)
        return item.attempts

    def inbox_purge(self, older_than: datetime) -> int:
        """Forget processed updates older than the replay window."""
        rows = self.s.exec(
            select(InboxItem).where(
                InboxItem.processed_at != None,  # noqa: E711
                col(InboxItem.received_at) < older_than,
            )
        ).all()
        for row in rows:
            self.s.delete(row)
        return len(rows)

    # --- outbox -----------------------------------------------------------------------------
    def enqueue(
        self,
        *,
        channel: str,
        address: str,
        payload: dict[str, Any],
        identity_id: int | None = None,
        kind: str = "reply",
        priority: int = 50,
        meta: dict[str, Any] | None = None,
        broadcast_id: int | None = None,
        report_id: int | None = None,
        not_before: datetime | None = None,
    ) -> OutboxItem:
        now = utcnow()
        item = OutboxItem(
            channel=channel,
            address=address,
            identity_id=identity_id,
            kind=kind,
            priority=priority,
            payload=payload,
            meta=meta or {},
            next_attempt_at=not_before or now,
            broadcast_id=broadcast_id,
            report_id=report_id,
            created_at=now,
        )
        self.s.add(item)
        self.s.flush()
        return item

    def enqueue_many(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert many outbox rows in one statement (keys as in `enqueue`)."""
        if not rows:
            return 0
        now = utcnow()
        values = [
            {
                "channel": r["channel"],
                "address": r["address"],
                "identity_id": r.get("identity_id"),
                "kind": r.get("kind", "reply"),
                "priority": r.get("priority", 50),
                "payload": r["payload"],
                "meta": r.get("meta") or {},
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": r.get("not_before") or now,
                "broadcast_id": r.get("broadcast_id"),
                "report_id": r.get("report_id"),
                "created_at": now,
            }
            for r in rows
        ]
        self.s.connection().execute(_OUTBOX_INSERT, values)
        return len(values)

    def inactive_identities(self, ids: Sequence[int]) -> set[int]:
        """Which of these identities are marked inactive (blocked the bot)."""
        ids = [i for i in ids if i not in self.known_active]
        if not ids:
            return set()
        rows = self.s.connection().execute(_IDENT_INACTIVE, {"b_ids": list(ids)})
        return {int(r[0]) for r in rows}

    def outbox_record(self, sent: Sequence[tuple[int, str | None]], at: datetime) -> None:
        """Mark rows sent at `at`: (outbox id, platform message id). One statement on
        PostgreSQL, one executemany on SQLite (in-process, where a statement costs little)."""
        if not sent:
            return
        conn = self.s.connection()
        if conn.dialect.name == "postgresql":
            ids, msgs = zip(*sent, strict=True)
            conn.execute(_OUTBOX_SENT_PG, {"b_ids": list(ids), "b_msgs": list(msgs), "b_at": at})
            return
        conn.execute(_OUTBOX_SENT, [{"b_id": i, "b_msg": m, "b_at": at} for i, m in sent])

    def outbox_due(
        self,
        now: datetime,
        *,
        channels: Sequence[str],
        limit: int = 500,
        after_id: int | None = None,
    ) -> list[DueMessage]:
        """Pending rows that may go now, by priority then age (`after_id`: only newer rows)."""
        rows = self.s.connection().execute(
            _OUTBOX_DUE,
            {
                "b_now": now,
                "b_channels": list(channels),
                "b_after": after_id or 0,
                "b_limit": limit,
            },
        )
        return [DueMessage(*r) for r in rows]

    def outbox_next_due_at(self, channels: Sequence[str]) -> datetime | None:
        return self.s.exec(
            select(func.min(OutboxItem.next_attempt_at)).where(
                OutboxItem.state == "pending", col(OutboxItem.channel).in_(list(channels))
            )
        ).one()

    def outbox_claim(self, ids: Sequence[int]) -> list[int]:
        """pending → sending for these rows (the record made *before* a send).

        Returns the ids actually claimed: a row cancelled or claimed meanwhile is skipped.
        """
        if not ids:
            return []
        res = self.s.connection().execute(_OUTBOX_CLAIM, {"b_ids": list(ids)})
        return [int(r[0]) for r in res]

    def outbox_recover_inflight(self) -> int:
        """After a crash: rows left in 'sending' may or may not have gone out; send again."""
        res = self.s.execute(
            update(OutboxItem).where(col(OutboxItem.state) == "sending").values(state="pending")
        )
        return int(res.rowcount or 0)  # type: ignore[attr-defined]

    def outbox_mark_retry(self, item_id: int, when: datetime, error: str | None) -> int:
        item = self.s.get(OutboxItem, item_id)
        if item is None:
            return 0
        item.attempts += 1
        item.state = "pending"
        item.next_attempt_at = when
        item.error = (error or "")[:500] or None
        self.s.add(item)
        return item.attempts

    def outbox_mark_failed(self, item_id: int, error: str | None, state: str = "failed") -> None:
        self.s.execute(
            update(OutboxItem)
            .where(col(OutboxItem.id) == item_id)
            .values(
                state=state, error=(error or "")[:500] or None, attempts=OutboxItem.attempts + 1
            )
        )

    def outbox_cancel_for_identity(self, identity_id: int, reason: str) -> int:
        res = self.s.execute(
            update(OutboxItem)
            .where(
                col(OutboxItem.identity_id) == identity_id,
                col(OutboxItem.state) == "pending",
            )
            .values(state="cancelled", error=reason[:500])
        )
        return int(res.rowcount or 0)  # type: ignore[attr-defined]

    def outbox_item(self, item_id: int) -> OutboxItem | None:
        return self.s.get(OutboxItem, item_id)

    def outbox_by_message_id(self, channel: str, message_id: str) -> OutboxItem | None:
        return self.s.exec(
            select(OutboxItem).where(
                OutboxItem.channel == channel, OutboxItem.platform_message_id == message_id
            )
        ).first()

    def outbox_set_delivery(
        self, channel: str, message_id: str, status: str, error: str | None
    ) -> bool:
        """Record a platform delivery receipt (sent/delivered/read/failed) on the row."""
        row = self.outbox_by_message_id(channel, message_id)
        if row is None:
            return False
        order = ("sent", "delivered", "read")
        if status in order and row.delivery_status in order:
            if order.index(status) <= order.index(row.delivery_status):  # receipts may reorder
                return True
        row.delivery_status = status[:16]
        if error:
            row.error = error[:500]
        self.s.add(row)
        return True

    def outbox_counts(self) -> dict[str, int]:
        rows = self.s.exec(select(OutboxItem.state, func.count()).group_by(OutboxItem.state))
        return {state: int(n) for state, n in rows}

    def outbox_pending_count(self) -> int:
        return int(
            self.s.exec(
                select(func.count())
                .select_from(OutboxItem)
                .where(or_(col(OutboxItem.state) == "pending", col(OutboxItem.state) == "sending"))
            ).one()
        )

    # --- areas ------------------------------------------------------------------------------
    def area_polygons(self) -> dict[str, str]:
        return {a.kode_kel: a.geometry for a in self.s.exec(select(AreaPolygon))}

    def save_area_polygon(self, kode_kel: str, kode_kec: str, name: str, geometry: str) -> None:
        row = self.s.get(AreaPolygon, kode_kel)
        if row is None:
            row = AreaPolygon(
                kode_kel=kode_kel,
                kode_kec=kode_kec,
                name=name,
                geometry=geometry,
                imported_at=utcnow(),
            )
        else:
            row.kode_kec, row.name, row.geometry = kode_kec, name, geometry
            row.imported_at = utcnow()
        self.s.add(row)

    # --- scheduled jobs -------------------------------------------------------------------------
    def schedule_job(self, kind: str, run_at: datetime, args: dict[str, Any]) -> ScheduledJob:
        job = ScheduledJob(kind=kind, args=args, run_at=run_at, created_at=utcnow())
        self.s.add(job)
        self.s.flush()
        return job

    def due_jobs(self, now: datetime, limit: int = 50) -> list[ScheduledJob]:
        q = (
            select(ScheduledJob)
            .where(
                ScheduledJob.done_at == None,  # noqa: E711
                ScheduledJob.cancelled == False,  # noqa: E712
                col(ScheduledJob.run_at) <= now,
            )
            .order_by(col(ScheduledJob.run_at), col(ScheduledJob.id))
            .limit(limit)
        )
        return list(self.s.exec(q))

    def pending_jobs(self) -> list[ScheduledJob]:
        q = select(ScheduledJob).where(
            ScheduledJob.done_at == None,  # noqa: E711
            ScheduledJob.cancelled == False,  # noqa: E712
        )
        return list(self.s.exec(q.order_by(col(ScheduledJob.run_at))))

    def scheduled_job(self, job_id: int) -> ScheduledJob | None:
        return self.s.get(ScheduledJob, job_id)

    def finish_job(self, job_id: int, error: str | None = None) -> None:
        job = self.s.get(ScheduledJob, job_id)
        if job is not None:
            job.done_at = utcnow()
            job.error = error[:500] if error else None
            self.s.add(job)

    def cancel_job(self, job_id: int) -> bool:
        job = self.s.get(ScheduledJob, job_id)
        if job is None or job.done_at is not None:
            return False
        job.cancelled = True
        self.s.add(job)
        return True


def recent_cutoff(days: int) -> datetime:
    return utcnow() - timedelta(days=days)
