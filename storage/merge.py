"""Two rows that turn out to be one (a person known under two WhatsApp ids): everything that
refers to the one given up is made to refer to the one kept, then the other is deleted.

Found from the tables' foreign keys (every table on `SQLModel.metadata`), so a table added
later is carried over too. A row that would then collide with one of the kept row's on a
unique key (its conversation, its staff role, a report both follow) is dropped: the kept
row's own stays.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    PrimaryKeyConstraint,
    Table,
    UniqueConstraint,
    and_,
    delete,
    exists,
    update,
)
from sqlmodel import SQLModel


def _unique_keys(table: Table) -> list[set[str]]:
    """The column names of every unique key of `table` (primary key, constraints, indexes)."""
    keys = [
        {c.name for c in k.columns}
        for k in table.constraints
        if isinstance(k, PrimaryKeyConstraint | UniqueConstraint)
    ]
    keys += [{c.name for c in i.columns} for i in table.indexes if i.unique]
    return keys


def _repoint_column(conn: Connection, table: Table, col: Column[Any], keep: int, drop: int) -> None:
    for key in _unique_keys(table):
        if col.name not in key:
            continue
        other = table.alias("kept")
        same = [other.c[name] == table.c[name] for name in key - {col.name}]
        collides = exists().where(and_(other.c[col.name] == keep, *same))
        conn.execute(delete(table).where(col == drop, collides))
    conn.execute(update(table).where(col == drop).values({col.name: keep}))


def merge_rows(conn: Connection, target: Table, keep: int, drop: int) -> None:
    """Every reference to row `drop` of `target` now goes to row `keep`; `drop` is deleted."""
    (pk,) = target.primary_key.columns
    for table in SQLModel.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column is pk:
                _repoint_column(conn, table, fk.parent, keep, drop)
    conn.execute(delete(target).where(pk == drop))
