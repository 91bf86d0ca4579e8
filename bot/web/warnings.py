"""What the public pages show at the top: active warnings and sensor levels of the last 24 h.

The warnings module (issue 5) owns the tables; this reads them only if they exist, with plain
SQL on a few columns, so the pages work before, during and after that work lands.  A module can
also hand its own function to the composition root (`services.extra["public_warnings"]`,
returning the same shape as `read_warnings`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import inspect, text

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
    """{"warnings": [{headline, level, source, sent_at}], "sensors": [{id, level, value,
    points: [[iso, value], ...]}]} from `published_warning`, `sensor_state` and
    `sensor_level_change` when those tables exist."""
    since = now - ACTIVE_FOR
    out: dict[str, Any] = {"warnings": [], "sensors": []}
    with db.session() as s:
        names = set(inspect(s.connection()).get_table_names())
        if "published_warning" in names:
            rows = s.execute(
                text(
                    "SELECT headline, level, source, sent_at FROM published_warning "
                    "WHERE sent_at >= :since ORDER BY sent_at DESC LIMIT 5"
                ),
                {"since": since},
            )
            for headline, level, source, sent_at in rows:
                if str(level).lower() == "normal":
                    continue
                out["warnings"].append(
                    {
                        "headline": headline,
                        "level": level,
                        "source": source,
                        "sent_at": _iso(sent_at),
                    }
                )
        if "sensor_state" in names:
            points: dict[str, list[list[Any]]] = {}
            if "sensor_level_change" in names:
                changes = s.execute(
                    text(
                        "SELECT sensor_id, value, reading_ts FROM sensor_level_change "
                        "WHERE reading_ts >= :since ORDER BY reading_ts"
                    ),
                    {"since": since},
                )
                for sid, value, ts in changes:
                    points.setdefault(str(sid), []).append([_iso(ts), float(value)])
            for sid, state in s.execute(text("SELECT sensor_id, state FROM sensor_state")):
                data = state if isinstance(state, dict) else json.loads(state or "{}")
                out["sensors"].append(
                    {
                        "id": str(sid),
                        "level": data.get("level"),
                        "value": data.get("value", data.get("last_value")),
                        "points": points.get(str(sid), [])[-200:],
                    }
                )
    return out


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(str(value))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.isoformat(timespec="seconds")
