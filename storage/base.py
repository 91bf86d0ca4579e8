"""What the repositories share: the session, its clock, and an insert that skips duplicates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, SQLModel

from storage.db import Clock, clock_of

if TYPE_CHECKING:
    from storage.unit import UnitOfWork


def table_of(model: type[SQLModel]) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


class Store:
    """Base of every repository: one session (= one transaction) and its clock. Made from a
    session, a unit of work or another repository (then on the same session)."""

    def __init__(self, source: Session | Store | UnitOfWork) -> None:
        if isinstance(source, Store):
            self._s: Session = source._s
        elif isinstance(source, Session):
            self._s = source
        else:
            self._s = source.session
        self.clock: Clock = clock_of(self._s)

    def now(self) -> datetime:
        return self.clock()


def insert_ignore(
    session: Session,
    model: type[SQLModel],
    values: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    keys: Sequence[str],
) -> int:
    """INSERT … ON CONFLICT (keys) DO NOTHING: how many rows were new.

    The database itself drops a duplicate (a replayed update, a second tap, a race with
    another process), so no savepoint is needed around the insert. Dialect statements are
    compiled on each call: keep them off the per-update path.
    """
    rows = [values] if isinstance(values, Mapping) else list(values)
    if not rows:
        return 0
    conn = session.connection()
    table = table_of(model)
    (pk,) = table.primary_key.columns[:1]
    make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = make(table).on_conflict_do_nothing(index_elements=list(keys)).returning(pk)
    return len(conn.execute(stmt, rows).all())
