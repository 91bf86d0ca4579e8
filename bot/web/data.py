"""Figures for the public map and the OPD dashboard (pure functions over rows from ApiRepo)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from storage.models import OPEN_STATUSES, STATUS_RESOLVED, Report

ROUND_DIGITS = 3  # public points are rounded to ~100 m
TREND_WEEKS = 12

DeadlineFn = Callable[[Report], datetime | None]


def map_point(row: tuple[Any, ...]) -> list[Any]:
    """(code, lat, lon, status, category, opd, kode_kec, anonymous, created_at, ...) → a
    compact public point: [code, lat, lon, status, category, opd, kode_kec, created (ISO)]."""
    code, lat, lon, status, category, opd, kec, _anonymous, created = row[:9]
    return [
        code,
        round(lat, ROUND_DIGITS),
        round(lon, ROUND_DIGITS),
        status,
        category,
        opd,
        kec,
        _aware(created).isoformat(timespec="minutes"),
    ]


def city_center(city: Any) -> list[float]:
    """[lat, lon] of the kelurahan centroid nearest to all the others (a place in the city;
    the mean of the centroids can fall between its parts: in Palu Bay); the middle of the
    bbox for a city without kelurahan."""
    points = [k.centroid for k in city.kelurahan]
    if not points:
        min_lon, min_lat, max_lon, max_lat = city.city.bbox
        return [(min_lat + max_lat) / 2, (min_lon + max_lon) / 2]
    medoid = min(points, key=lambda p: sum(math.dist(p, q) for q in points))
    return [medoid[0], medoid[1]]


def due_at(
    rid: int, category: str, created: datetime, deadline: DeadlineFn, tracked: dict[int, datetime]
) -> datetime | None:
    """A report's resolution deadline: the officers' tracked one, else the SLA default."""
    due = tracked.get(rid)
    if due is None:
        due = deadline(Report(category=category, created_at=_aware(created)))  # type: ignore[call-arg]
    return _aware(due) if due is not None else None


def is_overdue(status: str, due: datetime | None, now: datetime) -> bool:
    return status in OPEN_STATUSES and due is not None and due < now


@dataclass
class OpdFigures:
    code: str
    total: int = 0
    open: int = 0
    overdue: int = 0
    resolved: int = 0
    resolved_in_sla: int = 0
    response_minutes: list[float] = field(default_factory=list)
    resolution_minutes: list[float] = field(default_factory=list)

    def as_dict(self, name: str) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": name,
            "total": self.total,
            "open": self.open,
            "overdue": self.overdue,
            "median_response_minutes": _median(self.response_minutes),
            "median_resolution_minutes": _median(self.resolution_minutes),
            "within_sla_pct": (
                round(100.0 * self.resolved_in_sla / self.resolved, 1) if self.resolved else None
            ),
        }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _minutes(start: datetime, end: datetime) -> float:
    return max(0.0, (_aware(end) - start).total_seconds() / 60)


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
    """Per OPD and for the whole city: open, overdue, median minutes to first response and to
    resolution, % resolved within the SLA; plus reports created/resolved per week per OPD
    (last 12 weeks)."""
    figures: dict[str, OpdFigures] = {}
    city = OpdFigures("")
    this_week = week_start(now)
    weeks = [this_week - timedelta(weeks=i) for i in range(TREND_WEEKS - 1, -1, -1)]
    index = {w: i for i, w in enumerate(weeks)}
    trend: dict[str, dict[str, list[int]]] = {}
    for rid, opd, status, category, created, first_response, resolved in rows:
        created = _aware(created)
        f = figures.setdefault(opd, OpdFigures(opd))
        t = trend.setdefault(opd, {"created": [0] * TREND_WEEKS, "resolved": [0] * TREND_WEEKS})
        due = due_at(rid, category, created, deadline, tracked)
        is_open = status in OPEN_STATUSES
        overdue = is_overdue(status, due, now)
        in_period = since is None or created >= since
        done = status == STATUS_RESOLVED and resolved is not None
        for g in (f, city):
            g.open += is_open
            g.overdue += overdue
            if not in_period:
                continue
            g.total += 1
            if first_response is not None:
                g.response_minutes.append(_minutes(created, first_response))
            if done:
                g.resolution_minutes.append(_minutes(created, resolved))
                g.resolved += 1
                g.resolved_in_sla += due is None or _aware(resolved) <= due
        if not in_period:
            continue
        i = index.get(week_start(created))
        if i is not None:
            t["created"][i] += 1
        if done:
            j = index.get(week_start(resolved))
            if j is not None:
                t["resolved"][j] += 1
    opds = sorted(figures.values(), key=lambda f: (-f.open, f.code))
    return {
        "generated_at": now.isoformat(timespec="seconds"),
        "weeks": [w.date().isoformat() for w in weeks],
        "opds": [f.as_dict(opd_names.get(f.code, f.code)) for f in opds],
        "city": city.as_dict(""),
        "trend": trend,
    }
