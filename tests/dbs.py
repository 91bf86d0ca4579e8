"""Test databases: a temp SQLite file, or a fresh database on a real PostgreSQL server.

PostgreSQL comes from TEST_POSTGRES_URL (set by .ci/run), default
postgresql://postgres@127.0.0.1:5432/lapor_test.  Each use gets its own new database, dropped
afterwards.  An unreachable server fails the test (it is not skipped) unless
LAPOR_SKIP_POSTGRES=1 is set explicitly.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/lapor_test"


def postgres_base_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG)


def _admin_dsn(url: str) -> str:
    u = make_url(url).set(drivername="postgresql", database="postgres")
    return u.render_as_string(hide_password=False)


@contextmanager
def fresh_postgres() -> Iterator[str]:
    if os.environ.get("LAPOR_SKIP_POSTGRES") == "1":
        pytest.skip("LAPOR_SKIP_POSTGRES=1: PostgreSQL tests explicitly disabled")
    base = postgres_base_url()
    name = f"lapor_t_{uuid.uuid4().hex[:10]}"
    admin = _admin_dsn(base)
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL not reachable at {base} ({exc}). Start it (see .ci/run) or set "
            "TEST_POSTGRES_URL; LAPOR_SKIP_POSTGRES=1 skips these tests explicitly."
        )
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def database_url(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'lapor.db'}"
    else:
        with fresh_postgres() as url:
            yield url


def kill_connections(url: str) -> int:
    """Terminate every server connection to `url`'s database, as a restart would."""
    database = make_url(url).database
    with psycopg.connect(_admin_dsn(url), autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()
    return int(row[0]) if row else 0
