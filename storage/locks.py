"""Which process is which: sender slots and the scheduler's leader, as PostgreSQL advisory locks.

Several `lapor run` processes may share one PostgreSQL database (webhook mode behind a load
balancer).  Each holds, on a connection of its own, session-level advisory locks:

- a **sender slot** (0, 1, 2 …, the first one free): the outbox rows it claims carry it
  (`outbox.claimed_by`), so after a crash exactly that process's rows in flight are sent again,
  by itself on restart or by any other process that finds the slot's lock free;
- the **leader** lock: the one process holding it runs the scheduler (periodic jobs, durable
  one-off jobs) and polls outside sources.  Nobody configures it, so it cannot be forgotten.

PostgreSQL releases a session's advisory locks when its connection ends, so a lock held means a
live process and a killed process frees its locks at once (its socket closes).  If our own lock
connection is lost (a database restart) the locks are gone: `check()` says so, and the caller
takes them again.

SQLite allows one process (its file is one writer): that process is slot 0 and the leader.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Connection, Engine, text

from storage.db import Database, is_sqlite, make_engine

log = logging.getLogger(__name__)

# The advisory lock key space is shared by everything on the server: our two-part keys start
# with this number ("LAPOR" on a phone keypad), so other applications do not collide with us.
NAMESPACE_SLOT = 52767
NAMESPACE_LEADER = 52768
MAX_SLOTS = 256

_TRY = text("SELECT pg_try_advisory_lock(:ns, :key)")
_UNLOCK = text("SELECT pg_advisory_unlock(:ns, :key)")
_PING = text("SELECT 1")
_UNLOCK_ALL = text("SELECT pg_advisory_unlock_all()")
# Advisory locks are per database (their tag holds its OID): count this database's only.
_LIVE = text(
    "SELECT count(DISTINCT l.objid) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
    "WHERE l.locktype = 'advisory' AND l.classid = :ns AND l.objsubid = 2 AND l.granted "
    "AND d.datname = current_database()"
)


class ProcessLocks:
    """This process's advisory locks (thread-safe; call from worker threads)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.shared = not is_sqlite(db.engine)  # PostgreSQL: other processes may run too
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._mutex = threading.Lock()
        self.slot: int | None = None
        self.leader = False

    def _connection(self) -> Connection:
        if self._conn is None:
            if self._engine is None:  # unpooled: closing it really ends the session
                self._engine = make_engine(self.db.url, single_use=True)
            conn = self._engine.connect()
            self._conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _try(self, namespace: int, key: int) -> bool:
        return bool(self._connection().execute(_TRY, {"ns": namespace, "key": key}).scalar())

    def take_slot(self) -> int:
        """The first free sender slot, held from now on (0 on SQLite)."""
        with self._mutex:
            if self.slot is not None:
                return self.slot
            if not self.shared:
                self.slot = 0
                return 0
            for key in range(MAX_SLOTS):
                if self._try(NAMESPACE_SLOT, key):
                    self.slot = key
                    log.info("sender slot %d", key)
                    return key
            raise RuntimeError(f"all {MAX_SLOTS} sender slots are taken")

    def try_lead(self) -> bool:
        """Become the leader if nobody is (True while we are)."""
        with self._mutex:
            if not self.leader:
                self.leader = not self.shared or self._try(NAMESPACE_LEADER, 0)
            return self.leader

    def holding_dead_slot(self, slot: int) -> bool:
        """True if no live process holds `slot`: it is now held by us until `release_slot`.
        (Held while its rows are recovered, so a process starting meanwhile cannot take it.)"""
        if not self.shared:
            return False
        with self._mutex:
            return slot != self.slot and self._try(NAMESPACE_SLOT, slot)

    def release_slot(self, slot: int) -> None:
        with self._mutex:
            if self.shared and slot != self.slot:
                self._connection().execute(_UNLOCK, {"ns": NAMESPACE_SLOT, "key": slot})

    def live_slots(self) -> int:
        """How many processes hold a sender slot now (they share each platform's rate)."""
        if not self.shared:
            return 1
        with self._mutex:
            live = self._connection().execute(_LIVE, {"ns": NAMESPACE_SLOT}).scalar()
            return max(1, int(live or 0))

    def check(self) -> bool:
        """False if the lock connection was lost (and with it every lock): take them again."""
        if not self.shared:
            return True
        with self._mutex:
            try:
                self._connection().execute(_PING)
                return True
            except Exception:
                log.error("advisory locks: the connection was lost; slot and leadership gone")
                self._drop()
                return False

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                log.debug("closing the lost lock connection failed", exc_info=True)
        self._conn = None
        self.slot = None
        self.leader = False

    def close(self) -> None:
        """Give the locks up now (not when the server notices the connection is gone, which
        can take a moment), then close."""
        with self._mutex:
            if self._conn is not None:
                try:
                    self._conn.execute(_UNLOCK_ALL)
                except Exception:
                    log.debug("giving up the advisory locks failed", exc_info=True)
            self._drop()
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
