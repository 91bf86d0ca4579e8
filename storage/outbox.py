"""The outbox: every message to send is a row, written with the change that caused it.

`write_outgoing` is the one writer (the unit of work calls it at its flush); the rest is
what the sender needs: due rows, claims, results, delivery receipts.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import BigInteger, String, bindparam, func, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col, select

from storage.base import Store, table_of
from storage.models import ChannelIdentity, OutboxItem
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

    def outbox_due(
        self,
        now: datetime,
        *,
        channels: Sequence[str],
        limit: int = 500,
        after_id: int | None = None,
    ) -> list[DueMessage]:
        """Pending rows that may go now, by priority then age (`after_id`: only newer rows)."""
        rows = self._s.connection().execute(
            _OUTBOX_DUE,
            {
                "b_now": now,
                "b_channels": list(channels),
                "b_after": after_id or 0,
                "b_limit": limit,
            },
        )
        return [_due(r) for r in rows]

    def outbox_next_due_at(self, channels: Sequence[str]) -> datetime | None:
        return self._s.exec(
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
        res = self._s.connection().execute(_OUTBOX_CLAIM, {"b_ids": list(ids)})
        return [int(r.id) for r in res]

    def outbox_recover_inflight(self) -> int:
        """After a crash: rows left in 'sending' may or may not have gone out; send again."""
        res = self._s.execute(
            update(OutboxItem).where(col(OutboxItem.state) == "sending").values(state="pending")
        )
        return int(res.rowcount or 0)  # type: ignore[attr-defined]

    def outbox_mark_retry(self, item_id: int, when: datetime, error: str | None) -> int:
        item = self._s.get(OutboxItem, item_id)
        if item is None:
            return 0
        item.attempts += 1
        item.state = "pending"
        item.next_attempt_at = when
        item.error = (error or "")[:500] or None
        self._s.add(item)
        return item.attempts

    def outbox_mark_failed(self, item_id: int, error: str | None, state: str = "failed") -> None:
        self._s.execute(
            update(OutboxItem)
            .where(col(OutboxItem.id) == item_id)
            .values(
                state=state, error=(error or "")[:500] or None, attempts=OutboxItem.attempts + 1
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
