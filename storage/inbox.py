"""The inbox: raw platform updates, stored before they are acknowledged."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, exists, text, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete

from storage.base import Store, insert_ignore, table_of
from storage.db import Database
from storage.models import InboxItem

_IN = table_of(InboxItem)
_INBOX_PENDING = (
    core_select(_IN.c.id, _IN.c.channel, _IN.c.payload, _IN.c.sender_key)
    .where(_IN.c.processed_at.is_(None))
    .order_by(_IN.c.id)
    .limit(bindparam("b_limit"))
)
_INBOX_INSERT = _IN.insert()
# An item may be taken when it is unhandled and no unhandled item of its sender comes before
# it; on PostgreSQL one another worker holds is skipped (FOR UPDATE SKIP LOCKED). So several
# processes never handle one item twice, nor two items of one sender at once or out of order.
_C = _IN.alias("c")
_E = _IN.alias("e")
_EARLIER = (
    core_select(_E.c.id)
    .where(
        _E.c.channel == _C.c.channel,
        _E.c.sender_key == _C.c.sender_key,
        text("e.processed_at IS NULL"),  # literal: the partial index ix_inbox_open_sender
        _E.c.id < _C.c.id,
    )
    .offset(0)
)  # not pulled up into a join: an index lookup per item, whatever the statistics
_TAKEABLE = (
    core_select(_C.c.id)
    .where(
        _C.c.id.in_(bindparam("b_ids", expanding=True)),
        _C.c.processed_at.is_(None),
        ~exists(_EARLIER),
    )
    .with_for_update(of=_C, skip_locked=True)
)
# PostgreSQL: as a CTE, run once (as `IN (subquery)` it might run again and skip other rows).
_TAKEABLE_CTE = _TAKEABLE.cte("take").prefix_with("MATERIALIZED")
_INBOX_TAKE_PG = (
    update(_IN)
    .where(_IN.c.id == _TAKEABLE_CTE.c.id, _IN.c.processed_at.is_(None))
    .values(processed_at=bindparam("b_now"))
    .returning(_IN.c.id)
)
# SQLite: `IN (subquery)` (one process; and Python's sqlite3 opens no transaction before a
# statement that starts with WITH, so a CTE would commit on its own).
_INBOX_TAKE_SQLITE = (
    update(_IN)
    .where(_IN.c.id.in_(_TAKEABLE), _IN.c.processed_at.is_(None))
    .values(processed_at=bindparam("b_now"))
    .returning(_IN.c.id)
)


class Pending(NamedTuple):
    """An unhandled inbox item."""

    id: int
    channel: str
    payload: dict[str, Any]
    sender_key: str | None


class InboxRepo(Store):
    def _rows(
        self, channel: str, items: Sequence[tuple[str, dict[str, Any], str | None]]
    ) -> list[dict[str, Any]]:
        now = self.now()
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

    def inbox_accept(
        self, channel: str, key: str, payload: dict[str, Any], sender_key: str | None = None
    ) -> bool:
        """Store a raw update; False when (channel, key) is already there."""
        return self.inbox_accept_many(channel, [(key, payload, sender_key)]) == 1

    def inbox_insert_new(
        self, channel: str, items: Sequence[tuple[str, dict[str, Any], str | None]]
    ) -> int:
        """Store a batch that should hold no replay (the common case): a plain executemany,
        which SQLAlchemy caches and psycopg pipelines. A replayed key raises IntegrityError;
        the caller then rolls back and uses `inbox_accept_many`."""
        if not items:
            return 0
        self._s.connection().execute(_INBOX_INSERT, self._rows(channel, items))
        return len(items)

    def inbox_accept_many(
        self, channel: str, items: Sequence[tuple[str, dict[str, Any], str | None]]
    ) -> int:
        """Store (key, payload, sender_key) items; a replayed update is dropped by the unique
        (channel, dedupe_key) itself. Returns how many were new."""
        return insert_ignore(
            self._s, InboxItem, self._rows(channel, items), ["channel", "dedupe_key"]
        )

    def inbox_pending(self, limit: int = 100) -> list[Pending]:
        """(id, channel, payload, sender_key) of unhandled items, oldest first."""
        rows = self._s.connection().execute(_INBOX_PENDING, {"b_limit": limit})
        return [Pending(r.id, r.channel, r.payload, r.sender_key) for r in rows]

    def inbox_item(self, item_id: int) -> InboxItem | None:
        return self._s.get(InboxItem, item_id)

    def inbox_take(self, item_ids: Sequence[int]) -> set[int]:
        """Mark items processed at the start of the transaction that handles them; the ids
        this transaction took.

        An item another worker is handling (locked), has handled, or whose sender has an
        earlier item still unhandled is not taken: the caller leaves that sender alone for
        now.  So an update's effects are committed once and one sender's updates run one after
        another, even with several processes on one PostgreSQL database (on SQLite one process
        runs).
        """
        if not item_ids:
            return set()
        conn = self._s.connection()
        take = _INBOX_TAKE_PG if conn.dialect.name == "postgresql" else _INBOX_TAKE_SQLITE
        rows = conn.execute(take, {"b_ids": list(item_ids), "b_now": self.now()})
        return {int(r.id) for r in rows}

    def inbox_mark_processed(self, item_id: int, error: str | None = None) -> None:
        item = self._s.get(InboxItem, item_id)
        if item is not None:
            item.processed_at = self.now()
            item.error = error[:500] if error else None
            self._s.add(item)

    def inbox_record_failure(self, item_id: int, error: str) -> int:
        item = self._s.get(InboxItem, item_id)
        if item is None:
            return 0
        item.attempts += 1
        item.error = error[:500]
        self._s.add(item)
        return item.attempts

    def inbox_purge(self, older_than: datetime) -> int:
        """Forget processed updates older than the replay window."""
        res = self._s.execute(
            delete(InboxItem).where(
                col(InboxItem.processed_at).is_not(None), col(InboxItem.received_at) < older_than
            )
        )
        return int(res.rowcount or 0)  # type: ignore[attr-defined]


def store_updates(
    db: Database, channel: str, items: Sequence[tuple[str, dict[str, Any], str | None]]
) -> int:
    """Store a batch of raw updates in one transaction; how many were new.

    A batch normally holds only new updates (a platform resends only what we did not
    confirm): the plain insert first; if a replay is among them, drop it by its key."""
    if len({key for key, _payload, _sender in items}) == len(items):
        try:
            with db.session() as s:
                return InboxRepo(s).inbox_insert_new(channel, items)
        except IntegrityError:
            pass
    with db.session() as s:
        return InboxRepo(s).inbox_accept_many(channel, items)
