"""The outbox: every message to send is a row, written with the change that caused it.

`write_outgoing` is the one writer (the unit of work calls it at its flush); the rest is
what the sender needs: due rows, claims, results, delivery receipts.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import BigInteger, String, and_, bindparam, exists, func, or_, text, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col, select

from storage.base import Store, insert_ignore, table_of
from storage.models import ChannelIdentity, Counter, OutboxItem
from storage.views import DueMessage

_OUT = table_of(OutboxItem)
_IDENT = table_of(ChannelIdentity)


class ReplyLike(Protocol):
    def to_payload(self) -> dict[str, Any]: ...


class OutgoingLike(Protocol):
    """What the core hands back (`handlers.events.Outgoing`), as the writer reads it."""

    @property
    def channel(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def reply(self) -> ReplyLike: ...
    @property
    def identity_id(self) -> int | None: ...
    @property
    def priority(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def meta(self) -> dict[str, Any]: ...
    @property
    def report_id(self) -> int | None: ...
    @property
    def broadcast_id(self) -> int | None: ...
    @property
    def not_before(self) -> datetime | None: ...


# A plain executemany: psycopg sends it in pipeline mode (one round trip); SQLAlchemy's
# multi-row form would make long statement text that psycopg parses again each time.
_OUTBOX_INSERT = _OUT.insert()
_IDENT_INACTIVE = core_select(_IDENT.c.id).where(
    _IDENT.c.id.in_(bindparam("b_ids", expanding=True)), _IDENT.c.active.is_(False)
)


def write_outgoing(
    session: Session,
    outs: Sequence[OutgoingLike],
    now: datetime,
    known_active: Collection[int] = (),
) -> int:
    """Insert outbox rows for `outs`; messages to identities that blocked the bot are
    dropped (`known_active`: identities that wrote in this transaction, not asked again).
    Returns how many rows were written."""
    if not outs:
        return 0
    conn = session.connection()
    asked = {o.identity_id for o in outs if o.identity_id is not None} - set(known_active)
    inactive: set[int] = set()
    if asked:
        inactive = {int(r.id) for r in conn.execute(_IDENT_INACTIVE, {"b_ids": sorted(asked)})}
    payloads: dict[int, dict[str, Any]] = {}  # one payload per reply object (fan-out shares)
    rows = []
    for o in outs:
        if o.identity_id in inactive:
            continue
        key = id(o.reply)
        if key not in payloads:
            payloads[key] = o.reply.to_payload()
        rows.append(
            {
                "channel": o.channel,
                "address": o.address,
                "identity_id": o.identity_id,
                "kind": o.kind,
                "priority": o.priority,
                "payload": payloads[key],
                "meta": o.meta,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": o.not_before or now,
                "broadcast_id": o.broadcast_id,
                "report_id": o.report_id,
                "created_at": now,
            }
        )
    if rows:
        conn.execute(_OUTBOX_INSERT, rows)
    return len(rows)


# --- the claim -------------------------------------------------------------------------------
# A row may go when it is pending and due, and no other row of its chat is in flight or comes
# before it (priority, then age; a row waiting for its retry too): one message per chat at a
# time, in order, whichever process sends it.  On PostgreSQL the candidates are locked
# FOR UPDATE SKIP LOCKED, so two processes claiming at once take different rows: a row another
# process is claiming is skipped, and its chat's next row is not claimable while that one is
# still pending or sending.
_C = _OUT.alias("c")
_B = _OUT.alias("b")
_BLOCKER = (
    core_select(_B.c.id)
    .where(
        _B.c.channel == _C.c.channel,
        _B.c.address == _C.c.address,
        text("b.state IN ('pending', 'sending')"),  # literal: the partial index ix_outbox_open_chat
        or_(
            _B.c.state == "sending",
            _B.c.priority < _C.c.priority,
            and_(_B.c.priority == _C.c.priority, _B.c.id < _C.c.id),
        ),
    )
    .offset(0)
)  # not pulled up into a join: an index lookup per candidate, whatever the statistics
# ... nor was one sent to its chat since `b_recent` (now − the chat's gap: 1 msg/s per chat
# holds across processes too, for rows written after that message went).
_S = _OUT.alias("s")
_RECENT = (
    core_select(_S.c.id)
    .where(
        _S.c.channel == _C.c.channel,
        _S.c.address == _C.c.address,
        text("s.state = 'sent'"),  # literal: the partial index ix_outbox_chat_sent
        _S.c.sent_at > bindparam("b_recent"),
    )
    .offset(0)
)
_CLAIMABLE = (
    core_select(_C.c.id)
    .where(
        _C.c.state == "pending",
        _C.c.next_attempt_at <= bindparam("b_now"),
        _C.c.channel.in_(bindparam("b_channels", expanding=True)),
        ~exists(_BLOCKER),
        ~exists(_RECENT),
    )
    .order_by(_C.c.priority, _C.c.id)
    .limit(bindparam("b_limit"))
    .with_for_update(of=_C, skip_locked=True)
)
# PostgreSQL: a CTE run once (as `IN (subquery)` it may run again and, with SKIP LOCKED, get
# other rows, so a claim could take more than its LIMIT).  SQLite: `IN (subquery)` (one
# process; and Python's sqlite3 opens no transaction before a statement starting with WITH,
# so a CTE would commit on its own, apart from the results recorded with it).
_CLAIMABLE_CTE = _CLAIMABLE.cte("claim").prefix_with("MATERIALIZED")
# Read with each claim (one statement each, per batch): the identities' last messages to us
# (WhatsApp's 24-hour window) and which claimed chats have more rows open.
_LAST_INBOUND = core_select(_IDENT.c.id, _IDENT.c.last_inbound_at).where(
    _IDENT.c.id.in_(bindparam("b_ids", expanding=True))
)
_OPEN_CHATS = (
    core_select(_OUT.c.channel, _OUT.c.address)
    .where(
        _OUT.c.channel.in_(bindparam("b_channels", expanding=True)),
        _OUT.c.address.in_(bindparam("b_addresses", expanding=True)),
        text("outbox.state IN ('pending', 'sending')"),  # the partial index ix_outbox_open_chat
        _OUT.c.id.not_in(bindparam("b_ids", expanding=True)),
    )
    .distinct()
)
_OUTBOX_TAKE_PG = (
    update(_OUT)
    .where(_OUT.c.id == _CLAIMABLE_CTE.c.id, _OUT.c.state == "pending")
    .values(state="sending", claimed_by=bindparam("b_slot"))
    .returning(
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
)
_OUTBOX_TAKE_SQLITE = (
    update(_OUT)
    .where(_OUT.c.id.in_(_CLAIMABLE), _OUT.c.state == "pending")
    .values(state="sending", claimed_by=bindparam("b_slot"))
    .returning(
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
)
_OUTBOX_PAID = (
    update(_OUT).where(_OUT.c.id.in_(bindparam("b_ids", expanding=True))).values(paid=True)
)
_OUTBOX_RECOVER = (
    update(_OUT)
    .where(
        _OUT.c.state == "sending",
        or_(_OUT.c.claimed_by == bindparam("b_slot"), _OUT.c.claimed_by.is_(None)),
    )
    .values(state="pending", claimed_by=None, paid=False)
)
_OUTBOX_RELEASE = (
    update(_OUT)
    .where(_OUT.c.id.in_(bindparam("b_ids", expanding=True)), _OUT.c.state == "sending")
    .values(state="pending", claimed_by=None, paid=False, next_attempt_at=bindparam("b_now"))
)
_OUTBOX_SLOTS = (
    core_select(_OUT.c.claimed_by)
    .where(_OUT.c.state == "sending", _OUT.c.claimed_by.is_not(None))
    .distinct()
)
_COUNTER = table_of(Counter)
_COUNTER_READ = (
    core_select(_COUNTER.c.value).where(_COUNTER.c.name == bindparam("b_name")).with_for_update()
)
_COUNTER_ADD = (
    update(_COUNTER)
    .where(_COUNTER.c.name == bindparam("b_name"))
    .values(value=_COUNTER.c.value + bindparam("b_by"))
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
# PostgreSQL: the same for a whole batch in one statement (arrays unnested into a table).
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


def _due(row: Any) -> DueMessage:
    m = row._mapping
    return DueMessage(
        id=m["id"],
        channel=m["channel"],
        address=m["address"],
        identity_id=m["identity_id"],
        kind=m["kind"],
        priority=m["priority"],
        payload=m["payload"],
        meta=m["meta"],
        attempts=m["attempts"],
        broadcast_id=m["broadcast_id"],
    )


class OutboxRepo(Store):
    def outbox_record(self, sent: Sequence[tuple[int, str | None]], at: datetime) -> None:
        """Mark rows sent at `at`: (outbox id, platform message id). One statement on
        PostgreSQL, one executemany on SQLite (in-process, where a statement costs little)."""
        if not sent:
            return
        conn = self._s.connection()
        if conn.dialect.name == "postgresql":
            ids, msgs = zip(*sent, strict=True)
            conn.execute(_OUTBOX_SENT_PG, {"b_ids": list(ids), "b_msgs": list(msgs), "b_at": at})
            return
        conn.execute(_OUTBOX_SENT, [{"b_id": i, "b_msg": m, "b_at": at} for i, m in sent])

    def outbox_take(
        self,
        now: datetime,
        *,
        channels: Sequence[str],
        limit: int,
        slot: int,
        chat_gap: float = 0.0,
    ) -> list[DueMessage]:
        """Claim up to `limit` rows that may go now (pending → sending, `claimed_by` = the
        sender's slot), by priority then age: at most one per chat, only a chat's first open
        row, and none to a chat sent to in the last `chat_gap` seconds (see `_CLAIMABLE`).
        One statement; rows other processes hold are skipped."""
        params = {
            "b_now": now,
            "b_recent": now - timedelta(seconds=chat_gap),
            "b_channels": list(channels),
            "b_limit": limit,
            "b_slot": slot,
        }
        conn = self._s.connection()
        take = _OUTBOX_TAKE_PG if conn.dialect.name == "postgresql" else _OUTBOX_TAKE_SQLITE
        rows = sorted(
            (_due(r) for r in conn.execute(take, params)), key=lambda r: (r.priority, r.id)
        )
        if not rows:
            return rows
        idents = sorted({r.identity_id for r in rows if r.identity_id is not None})
        if idents:
            last: dict[int, datetime | None] = {
                int(i): at for i, at in conn.execute(_LAST_INBOUND, {"b_ids": idents})
            }
            for r in rows:
                at = last.get(r.identity_id) if r.identity_id is not None else None
                # SQLite keeps no zone: the column is UTC
                r.last_inbound_at = at.replace(tzinfo=UTC) if at and at.tzinfo is None else at
        found = conn.execute(
            _OPEN_CHATS,
            {
                "b_channels": sorted({r.channel for r in rows}),
                "b_addresses": sorted({r.address for r in rows}),
                "b_ids": [r.id for r in rows],
            },
        )
        open_chats = {(c, a) for c, a in found}
        for r in rows:
            r.more = (r.channel, r.address) in open_chats
        return rows

    def outbox_mark_paid(self, ids: Sequence[int]) -> None:
        """These claimed rows go on the paid lane (their Stars are reserved)."""
        if ids:
            self._s.connection().execute(_OUTBOX_PAID, {"b_ids": list(ids)})

    def outbox_recover_inflight(self, slot: int) -> int:
        """Rows left `sending` by a dead sender in `slot` may or may not have gone out: send
        them again (a duplicate is better than a missed warning)."""
        res = self._s.connection().execute(_OUTBOX_RECOVER, {"b_slot": slot})
        return int(res.rowcount or 0)

    def outbox_release(self, ids: Sequence[int], now: datetime) -> None:
        """Claimed rows that were not sent (a clean stop): pending again, for anyone."""
        if ids:
            self._s.connection().execute(_OUTBOX_RELEASE, {"b_ids": list(ids), "b_now": now})

    def outbox_inflight_slots(self) -> list[int]:
        """The sender slots that have rows `sending`."""
        return [int(r[0]) for r in self._s.connection().execute(_OUTBOX_SLOTS)]

    # --- a budget counted in the database (paid lanes) ------------------------------------------
    def budget_reserve(self, name: str, want: int, cap: int) -> int:
        """Reserve up to `want` units of the counter `name` without passing `cap`; how many
        were granted.  The counter row stays locked until the commit, so processes that
        reserve at once never pass the cap together."""
        if want <= 0:
            return 0
        conn = self._s.connection()
        used = conn.execute(_COUNTER_READ, {"b_name": name}).scalar()
        if used is None:
            insert_ignore(self._s, Counter, {"name": name, "value": 0}, ["name"])
            used = conn.execute(_COUNTER_READ, {"b_name": name}).scalar_one()
        granted = max(0, min(want, cap - int(used)))
        if granted:
            conn.execute(_COUNTER_ADD, {"b_name": name, "b_by": granted})
        return granted

    def budget_release(self, name: str, units: int) -> None:
        """Give back reserved units that were not used (a paid send that did not go)."""
        if units > 0:
            self._s.connection().execute(_COUNTER_ADD, {"b_name": name, "b_by": -units})

    def budget_used(self, name: str) -> int:
        row = self._s.get(Counter, name)
        return int(row.value) if row is not None else 0

    def outbox_mark_retry(self, item_id: int, when: datetime, error: str | None) -> int:
        item = self._s.get(OutboxItem, item_id)
        if item is None:
            return 0
        item.attempts += 1
        item.state = "pending"
        item.claimed_by = None
        item.paid = False
        item.next_attempt_at = when
        item.error = (error or "")[:500] or None
        self._s.add(item)
        return item.attempts

    def outbox_mark_failed(self, item_id: int, error: str | None, state: str = "failed") -> None:
        self._s.execute(
            update(OutboxItem)
            .where(col(OutboxItem.id) == item_id)
            .values(
                state=state,
                error=(error or "")[:500] or None,
                attempts=OutboxItem.attempts + 1,
                paid=False,
            )
        )

    def outbox_cancel_for_identity(self, identity_id: int, reason: str) -> int:
        res = self._s.execute(
            update(OutboxItem)
            .where(
                col(OutboxItem.identity_id) == identity_id,
                col(OutboxItem.state) == "pending",
            )
            .values(state="cancelled", error=reason[:500])
        )
        return int(res.rowcount or 0)  # type: ignore[attr-defined]

    def outbox_item(self, item_id: int) -> OutboxItem | None:
        return self._s.get(OutboxItem, item_id)

    def outbox_by_message_id(self, channel: str, message_id: str) -> OutboxItem | None:
        return self._s.exec(
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
        self._s.add(row)
        return True

    def outbox_counts(self) -> dict[str, int]:
        rows = self._s.exec(select(OutboxItem.state, func.count()).group_by(OutboxItem.state))
        return {state: int(n) for state, n in rows}

    def outbox_pending_count(self) -> int:
        return int(
            self._s.exec(
                select(func.count())
                .select_from(OutboxItem)
                .where(or_(col(OutboxItem.state) == "pending", col(OutboxItem.state) == "sending"))
            ).one()
        )
