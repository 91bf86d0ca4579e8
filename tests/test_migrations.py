"""Alembic migrations: upgrade, downgrade to nothing and upgrade again, on SQLite and PostgreSQL;
the migrated schema matches the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers every table)
from storage.db import downgrade, normalize_url, upgrade
from tests.dbs import database_url


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_upgrade_downgrade_upgrade(kind: str, tmp_path: Path) -> None:
    with database_url(kind, tmp_path) as url:
        engine = create_engine(normalize_url(url))
        try:
            upgrade(url)
            tables = set(inspect(engine).get_table_names())
            assert {
                "person",
                "channel_identity",
                "report",
                "report_event",
                "photo",
                "conversation",
                "inbox",
                "outbox",
                "staff",
                "scheduled_job",
            } <= tables
            downgrade(url, "base")
            assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
            upgrade(url)
            with engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
            # Only differences that are not real (e.g. SQLite reflecting types) are allowed.
            real = [
                d
                for d in diff
                if d[0] in ("add_table", "remove_table", "add_column", "remove_column")
            ]
            assert real == [], real
        finally:
            engine.dispose()
