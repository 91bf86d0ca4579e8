"""Dashboard figures per OPD and for the whole city, computed by hand for a few reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.city import load_city
from bot.web.data import city_center, dashboard, map_point, week_start
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
    assert pupr["median_response_minutes"] == 4 * 60  # of 2, 4, 6 hours
    assert pupr["median_resolution_minutes"] == (5 + 11) / 2 * 24 * 60  # 5 and 11 days
    assert pupr["within_sla_pct"] == 50.0  # 5 days ok, 11 days late
    dlh = by["DLH"]
    assert (dlh["total"], dlh["open"], dlh["overdue"]) == (1, 1, 1)
    assert dlh["within_sla_pct"] is None and dlh["median_resolution_minutes"] is None
    assert out["opds"][0]["code"] == "PUPR"  # most open first
    # the whole city: every report, medians over all of them (not a median of medians)
    city = out["city"]
    assert (city["total"], city["open"], city["overdue"]) == (5, 3, 3)
    assert city["median_response_minutes"] == 3 * 60  # of 1, 2, 4, 6 hours
    assert city["within_sla_pct"] == 50.0
    assert len(out["weeks"]) == 12 and out["weeks"][-1] == week_start(NOW).date().isoformat()
    trend = out["trend"]["PUPR"]
    assert sum(trend["created"]) == 4  # all four within the last 12 weeks
    assert trend["created"][-1] == 1  # report 2, this week
    assert sum(trend["resolved"]) == 2


def test_work_done_in_minutes_keeps_its_minutes() -> None:
    m = timedelta(minutes=1)
    s20 = timedelta(seconds=20)
    rows = [
        (1, "DLH", "selesai", "sampah", NOW - 90 * m, NOW - 83 * m, NOW - 65 * m),
        (2, "DLH", "selesai", "sampah", NOW - 60 * m, NOW - 51 * m, NOW - 20 * m),
        (3, "DLH", "diproses", "sampah", NOW - 30 * m, NOW - 30 * m + s20, None),  # 20 seconds
    ]
    out = dashboard(rows, now=NOW, since=None, deadline=due_in_8_days, tracked={}, opd_names={})
    (dlh,) = out["opds"]
    assert dlh["median_response_minutes"] == 7.0  # of 1/3, 7 and 9 minutes
    assert dlh["median_resolution_minutes"] == (25 + 40) / 2


def test_map_points_are_rounded_and_dated() -> None:
    created = datetime(2026, 11, 20, 3, 4, 5)
    row = ("PLU-2611-0001", -0.8912345, 119.8712345, "baru", "sampah", "DLH", "72.71.01", False,
           created, 17)  # fmt: skip
    assert map_point(row) == [
        "PLU-2611-0001",
        -0.891,
        119.871,
        "baru",
        "sampah",
        "DLH",
        "72.71.01",
        "2026-11-20T03:04+00:00",
    ]


def test_the_city_centre_is_a_kelurahan_in_the_middle_of_the_city() -> None:
    city = load_city("palu")
    lat, lon = city_center(city)
    besusu_barat = next(k for k in city.kelurahan if k.name == "Besusu Barat")
    assert (lat, lon) == besusu_barat.centroid  # on land, not in Palu Bay
