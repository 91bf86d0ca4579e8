"""Engine, sessions and migrations."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError
from sqlalchemy.pool import NullPool
from sqlmodel import Session, create_engine

if TYPE_CHECKING:
    from storage.unit import UnitOfWork

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

Clock = Callable[[], datetime]
_CLOCK = "lapor.clock"  # key in Session.info


def utcnow() -> datetime:
    """The wall clock, aware UTC. Only the composition root (and tools without an app) pass
    it to `Database`; everything in storage reads the clock of its session (`clock_of`)."""
    return datetime.now(UTC)


def clock_of(session: Session) -> Clock:
    """The clock of the `Database` that opened this session: one clock everywhere."""
    clock: Clock = session.info[_CLOCK]
    return clock


def is_outage(exc: BaseException) -> bool:
    """The database itself failed (gone, restarting, unreachable): no update's fault."""
    return isinstance(exc, OperationalError | InterfaceError)


def url_backend(url: str) -> str | None:
    """`sqlite` or `postgresql` for a database URL we can use; None otherwise."""
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        return None
    backend = "postgresql" if backend == "postgres" else backend
    return backend if backend in ("sqlite", "postgresql") else None


def describe_failure(url: str, exc: BaseException) -> str:
    """One line: which database (password hidden) and the driver's first line of why."""
    why = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    shown = make_url(url).render_as_string(hide_password=True)
    return f"cannot use the database at {shown}: {why[0] if why else type(exc).__name__}"


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL; create the folder of a SQLite file."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(str(parsed.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, echo: bool = False, single_use: bool = False) -> Engine:
    """`single_use`: no connection pool (migrations, CLI one-shots)."""
    url = normalize_url(url)
    extra: dict[str, object] = {"poolclass": NullPool} if single_use else {}
    if url.startswith("sqlite"):
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}, **extra
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if single_use:
        return create_engine(url, echo=echo, **extra)
    # No pre-ping: it costs a round trip per transaction.  A connection that died (server
    # restart) fails its transaction once; SQLAlchemy then invalidates every pooled connection
    # as old as it, and callers retry (the inbox worker and the sender both do).
    return create_engine(url, echo=echo, pool_size=10, max_overflow=10, pool_recycle=3600)


class Database:
    """Owns the engine; hands out one session (= one transaction) at a time.

    SQLite allows one writer; threads that collide wait in SQLite's busy handler, which
    sleeps in steps of milliseconds.  So on SQLite this process runs its transactions one at
    a time behind a lock (a hand-off in microseconds); PostgreSQL runs them in parallel.
    """

    def __init__(self, url: str, *, clock: Clock = utcnow) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url)
        self.clock = clock
        self._serial = threading.RLock() if is_sqlite(self.engine) else None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on any exception."""
        lock = self._serial or contextlib.nullcontext()
        with lock, Session(self.engine, expire_on_commit=False) as session:
            session.info[_CLOCK] = self.clock
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def unit(self) -> Iterator[UnitOfWork]:
        """A transaction with a unit of work: what it holds is flushed, then committed."""
        from storage.unit import UnitOfWork

        with self.session() as session:
            uow = UnitOfWork(session)
            yield uow
            uow.flush()

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)
