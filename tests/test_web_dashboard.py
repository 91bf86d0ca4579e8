"""Dashboard figures per OPD, computed by hand for a few reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.web.data import dashboard, map_point, week_start
from storage.models import Report

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday


def due_in_8_days(report: Report) -> datetime:
    return report.created_at + timedelta(days=8)


def test_open_overdue_medians_sla_and_weekly_trend() -> None:
    h = timedelta(hours=1)
    d = timedelta(days=1)
    rows = [
        # id, opd, status, category, created, first_response, resolved
        (1, "PUPR", "baru", "jalan_rusak", NOW - 10 * d, None, None),  # open, overdue
        (2, "PUPR", "diproses", "jalan_rusak", NOW - 2 * d, NOW - 2 * d + 4 * h, None),  # open
        (3, "PUPR", "selesai", "jalan_rusak", NOW - 20 * d, NOW - 20 * d + 2 * h, NOW - 15 * d),
        (4, "PUPR", "selesai", "jalan_rusak", NOW - 30 * d, NOW - 30 * d + 6 * h, NOW - 19 * d),
        (5, "DLH", "ditolak", "sampah", NOW - 3 * d, NOW - 3 * d + 1 * h, None),
        (6, "DLH", "baru", "sampah", NOW - 200 * d, None, None),  # old but open: counted open
    ]
    out = dashboard(
        rows,
        now=NOW,
        since=NOW - 90 * d,
        deadline=due_in_8_days,
        tracked={2: NOW - h},  # the officers' module moved this deadline: now overdue too
        opd_names={"PUPR": "Dinas PUPR", "DLH": "DLH"},
    )
    by = {o["code"]: o for o in out["opds"]}
    pupr = by["PUPR"]
    assert pupr["name"] == "Dinas PUPR"
    assert (pupr["total"], pupr["open"], pupr["overdue"]) == (4, 2, 2)
    assert pupr["median_response_hours"] == 4.0  # of 2, 4, 6
    assert pupr["median_resolution_hours"] == (5 * 24 + 11 * 24) / 2  # 120 h and 264 h
    assert pupr["within_sla_pct"] == 50.0  # 5 days ok, 11 days late
    dlh = by["DLH"]
    assert (dlh["total"], dlh["open"], dlh["overdue"]) == (1, 1, 1)
    assert dlh["within_sla_pct"] is None and dlh["median_resolution_hours"] is None
    assert out["opds"][0]["code"] == "PUPR"  # most open first
    assert len(out["weeks"]) == 12 and out["weeks"][-1] == week_start(NOW).date().isoformat()
    trend = out["trend"]["PUPR"]
    assert sum(trend["created"]) == 4  # all four within the last 12 weeks
    assert trend["created"][-1] == 1  # report 2, this week
    assert sum(trend["resolved"]) == 2


def test_map_points_are_rounded() -> None:
    row = ("PLU-2611-0001", -0.8912345, 119.8712345, "baru", "sampah", "DLH", "72.71.01", False)
    assert map_point(row) == ["PLU-2611-0001", -0.891, 119.871, "baru", "sampah", "DLH", "72.71.01"]
