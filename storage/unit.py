"""The unit of work: what one transaction read, and the writes it holds until one flush.

The inbox worker makes one for every batch of updates (a single update is a batch of one)
and hands it to the core; the scheduler, Open311 and the command line make one per
transaction too (`Database.unit()`). A unit of work

- keeps what the batch read once: every sender with person and conversation
  (`PeopleRepo.read_senders`), rarely changing rows read again and again (`memo`: an OPD's
  queue group and officers), and which identities wrote to us (so they are active);
- holds the high-volume writes: conversation states, new reports with their events, photos
  and tracks, and every outgoing message. `flush()` writes them in one ordered step, each
  kind as one executemany: reserved numbers not used are given back, then conversations,
  reports, events, photos, tracks, the session's own ORM changes (an officer's status
  change, staff, subscriptions), and last the outbox;
- refuses to commit while it holds writes (`UnflushedWork`: a forgotten flush is an error,
  not a silent loss) and refuses savepoints. An item that fails is not rolled back around
  live objects: its batch's transaction is thrown away and the batch runs again without it
  (bot/inbox.py).

A new report gets its id when it is made (`reserve_id`: PostgreSQL's sequence, on SQLite the
highest id so far), so the decision can name it (buttons, events) before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import bindparam, event, func, text, update
from sqlalchemy import select as core_select
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, SQLModel

from storage.base import Store, insert_ignore, table_of
from storage.db import clock_of
from storage.models import Conversation, Counter, Photo, Report, ReportEvent
from storage.outbox import OutgoingLike, write_outgoing
from storage.views import IdentityView, PersonView
from storage.work_models import ReportTrack

_KEY = "lapor.unit"  # Session.info

_CONV = table_of(Conversation)
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
_CONV_DELETE = _CONV.delete().where(_CONV.c.identity_id.in_(bindparam("b_ids", expanding=True)))

_COUNTER = table_of(Counter)
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

_REPORT = table_of(Report)
_REPORT_MAX_ID = core_select(func.coalesce(func.max(_REPORT.c.id), 0))
_REPORT_IDS_PG = text(
    "SELECT nextval(pg_get_serial_sequence('report', 'id')) FROM generate_series(1, :n)"
)

# Plain executemany statements: SQLAlchemy caches them and psycopg pipelines them.
_INSERTS = {model: table_of(model).insert() for model in (Report, ReportEvent, Photo, ReportTrack)}


class UnflushedWork(RuntimeError):
    """A transaction was about to commit while its unit of work still held writes."""


class SavepointRefused(RuntimeError):
    """A savepoint was opened in a transaction with a unit of work."""


State = tuple[str, dict[str, Any]]


def copy_json(data: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of JSON data (what a JSON column would give back)."""
    return cast(dict[str, Any], json.loads(json.dumps(data)))


@dataclass(slots=True)
class _Numbers:
    """A block of reserved numbers: the last one used and the last one reserved."""

    used: int
    top: int


class UnitOfWork:
    def __init__(self, session: Session) -> None:
        if _KEY in session.info:
            raise RuntimeError("this session has a unit of work already")
        self.session = session
        self.clock = clock_of(session)
        session.info[_KEY] = self
        event.listen(session, "before_commit", self._before_commit)
        event.listen(session, "after_transaction_create", self._refuse_savepoint)
        # what the batch read -------------------------------------------------------------
        self.size = 1  # senders in the batch: how many numbers a reservation takes
        self.who: dict[tuple[str, str], tuple[IdentityView, PersonView] | None] = {}
        self.created: set[tuple[str, str]] = set()  # first-time senders made up front
        self.conv: dict[int, State | None] = {}  # identity id → its conversation (known)
        self.stored: dict[int, bool] = {}  # identity id → a conversation row exists
        self.known_active: set[int] = set()  # identities that wrote in this transaction
        self.memo: dict[tuple[Any, ...], Any] = {}
        # reserved numbers ----------------------------------------------------------------
        self._numbers: dict[str, _Numbers] = {}  # counter name → block (report codes)
        self._report_ids: list[int] = []  # reserved, not yet used
        # held writes ---------------------------------------------------------------------
        self.conv_writes: dict[int, tuple[str, dict[str, Any], datetime] | None] = {}
        self.reports: dict[int, Report] = {}
        self.events: list[ReportEvent] = []
        self.photos: list[Photo] = []
        self.tracks: dict[int, ReportTrack] = {}
        self.outgoing: list[OutgoingLike] = []

    @classmethod
    def of(cls, session: Session) -> UnitOfWork:
        """The session's unit of work (made on first use)."""
        found = session.info.get(_KEY)
        return found if found is not None else cls(session)

    # --- guards ---------------------------------------------------------------------------
    def holds_writes(self) -> bool:
        return bool(
            self.conv_writes
            or self.reports
            or self.events
            or self.photos
            or self.tracks
            or self.outgoing
            or any(n.used < n.top for n in self._numbers.values())
        )

    def _before_commit(self, session: Session) -> None:
        if self.holds_writes():
            raise UnflushedWork("commit with unflushed writes: call flush() first")

    def _refuse_savepoint(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.nested:
            raise SavepointRefused("no savepoints in a unit of work")

    # --- conversations --------------------------------------------------------------------
    def set_conversation(self, identity_id: int, step: str, data: dict[str, Any]) -> None:
        snapshot = copy_json(data)  # as the database would keep it
        self.conv[identity_id] = (step, snapshot)
        self.conv_writes[identity_id] = (step, snapshot, self.clock())

    def clear_conversation(self, identity_id: int) -> None:
        self.conv[identity_id] = None
        self.conv_writes[identity_id] = None

    # --- reports ----------------------------------------------------------------------------
    def number(self, name: str) -> int:
        """The next value of a named counter (report codes). The first call reserves a number
        for every sender of the batch with one UPDATE (the row stays locked until the commit,
        so the block is ours); `flush` gives back what is left, so numbers have no gaps."""
        block = self._numbers.get(name)
        if block is None or block.used >= block.top:
            top = self._advance(name, self.size)
            block = self._numbers[name] = _Numbers(top - self.size, top)
        block.used += 1
        return block.used

    def _advance(self, name: str, by: int) -> int:
        conn = self.session.connection()
        row = conn.execute(_COUNTER_ADD, {"b_name": name, "b_by": by}).first()
        if row is None:  # a new counter (e.g. a new month): create it, then add
            insert_ignore(self.session, Counter, {"name": name, "value": 0}, ["name"])
            row = conn.execute(_COUNTER_ADD, {"b_name": name, "b_by": by}).one()
        return int(row.value)

    def reserve_id(self) -> int:
        """An id for a new report, known before the report is written."""
        if not self._report_ids:
            conn = self.session.connection()
            if conn.dialect.name == "postgresql":
                self._report_ids = [
                    int(r[0]) for r in conn.execute(_REPORT_IDS_PG, {"n": self.size})
                ]
            else:  # one writer at a time (the file lock): the next ids are ours
                top = max([int(conn.execute(_REPORT_MAX_ID).scalar_one()), *self.reports])
                self._report_ids = list(range(top + 1, top + 1 + self.size))
        return self._report_ids.pop(0)

    def add_report(self, report: Report) -> Report:
        if report.id is None:
            report.id = self.reserve_id()
        self.reports[report.id] = report
        return report

    def add_event(self, ev: ReportEvent) -> ReportEvent:
        self.events.append(ev)
        return ev

    def add_photo(self, photo: Photo) -> Photo:
        self.photos.append(photo)
        return photo

    def add_track(self, track: ReportTrack) -> ReportTrack:
        self.tracks[track.report_id] = track
        return track

    def events_of(self, report_id: int) -> list[ReportEvent]:
        return [e for e in self.events if e.report_id == report_id]

    def photos_of(self, report_id: int) -> list[Photo]:
        return [p for p in self.photos if p.report_id == report_id]

    # --- outbox -----------------------------------------------------------------------------
    def send(self, outs: Sequence[OutgoingLike]) -> None:
        """Messages to put in the outbox with this transaction."""
        self.outgoing.extend(outs)

    # --- the flush --------------------------------------------------------------------------
    def flush(self) -> None:
        """Write everything held, in order, each kind as one statement (executemany)."""
        conn = self.session.connection()
        for name, block in self._numbers.items():
            if block.used < block.top:  # still ours (the row is locked): the next one goes on
                conn.execute(_COUNTER_SET, {"b_name": name, "b_value": block.used})
        self._numbers.clear()
        self._flush_conversations()
        for model, rows in (
            (Report, list(self.reports.values())),
            (ReportEvent, self.events),
            (Photo, self.photos),
            (ReportTrack, list(self.tracks.values())),
        ):
            if rows:
                conn.execute(_INSERTS[model], [_values(row) for row in rows])
        self.reports, self.events, self.photos, self.tracks = {}, [], [], {}
        self.session.flush()
        outs, self.outgoing = self.outgoing, []
        write_outgoing(self.session, outs, self.clock(), self.known_active)

    def _flush_conversations(self) -> None:
        if not self.conv_writes:
            return
        conn = self.session.connection()
        gone = [i for i, v in self.conv_writes.items() if v is None]
        if gone:
            conn.execute(_CONV_DELETE, {"b_ids": gone})
        # Rows the batch saw exist are UPDATEd, rows it saw missing are INSERTed; one it never
        # read (another identity's) is tried as an UPDATE, then INSERTed.
        updates: list[dict[str, Any]] = []
        inserts: list[dict[str, Any]] = []
        unknown: list[dict[str, Any]] = []
        for ident_id, held in self.conv_writes.items():
            if held is None:
                self.stored[ident_id] = False
                continue
            row = {"b_id": ident_id, "b_step": held[0], "b_data": held[1], "b_now": held[2]}
            stored = self.stored.get(ident_id)
            (unknown if stored is None else updates if stored else inserts).append(row)
            self.stored[ident_id] = True
        for row in unknown:
            if not conn.execute(_CONV_UPDATE, row).rowcount:
                inserts.append(row)
        if updates:
            conn.execute(_CONV_UPDATE, updates)
        if inserts:
            conn.execute(_CONV_INSERT, inserts)
        self.conv_writes = {}


def _values(row: SQLModel) -> dict[str, Any]:
    table = table_of(type(row))
    values = {c.key: getattr(row, c.key) for c in table.columns}
    (pk,) = table.primary_key.columns[:1]
    if values.get(pk.key) is None:
        del values[pk.key]
    return values


class UnitStore(Store):
    """A repository whose reads and writes go through its session's unit of work."""

    def __init__(self, source: Session | Store | UnitOfWork) -> None:
        super().__init__(source)
        self.uow = UnitOfWork.of(self._s)
