"""What the public pages show at the top: active warnings and sensor levels of the last 24 h.

The warnings module owns the tables; `storage.api_repo.public_warnings` reads a few
columns of them.  A module can also hand its own function to the composition root
(`services.extra["public_warnings"]`, returning the same shape).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from storage.api_repo import public_warnings
from storage.db import Database

log = logging.getLogger(__name__)

WarningsProvider = Callable[[], dict[str, Any]]
ACTIVE_FOR = timedelta(hours=24)


def table_provider(db: Database, clock: Callable[[], datetime]) -> WarningsProvider:
    def provider() -> dict[str, Any]:
        try:
            return read_warnings(db, clock())
        except Exception:
            log.warning("public warnings: could not read", exc_info=True)
            return {"warnings": [], "sensors": []}

    return provider


def read_warnings(db: Database, now: datetime) -> dict[str, Any]:
    """{"warnings": [...], "sensors": [...]} of the last 24 hours."""
    with db.session() as s:
        return public_warnings(s, now - ACTIVE_FOR)
