"""Figures for the public map and the OPD dashboard (pure functions over rows from ApiRepo)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from storage.models import OPEN_STATUSES, STATUS_RESOLVED, Report

ROUND_DIGITS = 3  # public points are rounded to ~100 m
TREND_WEEKS = 12

DeadlineFn = Callable[[Report], datetime | None]


def map_point(row: tuple[Any, ...]) -> list[Any]:
    """(code, lat, lon, status, category, opd, kode_kec, ...) → a compact public point."""
    code, lat, lon, status, category, opd, kec = row[:7]
    return [code, round(lat, ROUND_DIGITS), round(lon, ROUND_DIGITS), status, category, opd, kec]


@dataclass
class OpdFigures:
    code: str
    total: int = 0
    open: int = 0
    overdue: int = 0
    resolved: int = 0
    resolved_in_sla: int = 0
    response_hours: list[float] | None = None
    resolution_hours: list[float] | None = None

    def as_dict(self, name: str) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": name,
            "total": self.total,
            "open": self.open,
            "overdue": self.overdue,
            "median_response_hours": _median(self.response_hours),
            "median_resolution_hours": _median(self.resolution_hours),
            "within_sla_pct": (
                round(100.0 * self.resolved_in_sla / self.resolved, 1) if self.resolved else None
            ),
        }


def _median(values: list[float] | None) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def week_start(dt: datetime) -> datetime:
    d = _aware(dt).astimezone(UTC)
    monday = d - timedelta(days=d.weekday())
    return monday.replace(hour=0, minute=0, second=0, microsecond=0)


def dashboard(
    rows: Iterable[tuple[Any, ...]],
    *,
    now: datetime,
    since: datetime | None,
    deadline: DeadlineFn,
    tracked: dict[int, datetime],
    opd_names: dict[str, str],
) -> dict[str, Any]:
    """Per OPD: open, overdue, median hours to first response and to resolution, % resolved
    within the SLA; plus reports created/resolved per week (last 12 weeks)."""
    figures: dict[str, OpdFigures] = {}
    this_week = week_start(now)
    weeks = [this_week - timedelta(weeks=i) for i in range(TREND_WEEKS - 1, -1, -1)]
    index = {w: i for i, w in enumerate(weeks)}
    trend: dict[str, dict[str, list[int]]] = {}
    for rid, opd, status, category, created, first_response, resolved in rows:
        created = _aware(created)
        f = figures.setdefault(opd, OpdFigures(opd, response_hours=[], resolution_hours=[]))
        t = trend.setdefault(opd, {"created": [0] * TREND_WEEKS, "resolved": [0] * TREND_WEEKS})
        in_period = since is None or created >= since
        due = tracked.get(rid)
        if due is None:
            due = deadline(Report(category=category, created_at=created))  # type: ignore[call-arg]
        if status in OPEN_STATUSES:
            f.open += 1
            if due is not None and due < now:
                f.overdue += 1
        if not in_period:
            continue
        f.total += 1
        i = index.get(week_start(created))
        if i is not None:
            t["created"][i] += 1
        if first_response is not None:
            hours = (_aware(first_response) - created).total_seconds() / 3600
            assert f.response_hours is not None
            f.response_hours.append(max(0.0, hours))
        if status == STATUS_RESOLVED and resolved is not None:
            resolved = _aware(resolved)
            assert f.resolution_hours is not None
            f.resolution_hours.append(max(0.0, (resolved - created).total_seconds() / 3600))
            f.resolved += 1
            if due is None or resolved <= due:
                f.resolved_in_sla += 1
            j = index.get(week_start(resolved))
            if j is not None:
                t["resolved"][j] += 1
    opds = sorted(figures.values(), key=lambda f: (-f.open, f.code))
    return {
        "generated_at": now.isoformat(timespec="seconds"),
        "weeks": [w.date().isoformat() for w in weeks],
        "opds": [f.as_dict(opd_names.get(f.code, f.code)) for f in opds],
        "trend": trend,
    }
