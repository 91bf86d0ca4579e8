"""Shared fixtures.  Fakes for outside services live in tests/fakes/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """`../shared/data` beside the clone (override with LAPOR_SHARED_DIR)."""
    base = Path(os.environ.get("LAPOR_SHARED_DIR", REPO_ROOT.parent / "shared"))
    return base / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.exists():
        pytest.fail(f"shared data not found at {path}; set LAPOR_SHARED_DIR")
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A migrated, empty database URL on SQLite and on PostgreSQL."""
    from storage.db import upgrade
    from tests.dbs import database_url

    with database_url(request.param, tmp_path) as url:
        upgrade(url)
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    from storage.db import upgrade

    url = f"sqlite:///{tmp_path / 'lapor.db'}"
    upgrade(url)
    return url
