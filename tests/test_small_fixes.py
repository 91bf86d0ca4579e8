"""The small ones of issue 13, through the core: hints in the city's own code and month, the
scheduling example from the clock, one time format with the zone, "at the same spot", and
the taps from /lapor to a ticket with GPS and photo."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlmodel import select

from storage.models import Report
from tests.core_harness import CoreHarness, choice_ids, texts
from tests.test_broadcast import harness, make_admin
from tests.test_officer_flow import file_report, make_staff, officer_core

WHEN = re.compile(
    r"\b\d{1,2} (Jan|Feb|Mar|Apr|Mei|Jun|Jul|Agu|Sep|Okt|Nov|Des) \d{4} \d\d:\d\d WITA\b"
)


def test_hints_use_the_citys_prefix_and_this_month(sqlite_url: str) -> None:
    core = CoreHarness(sqlite_url, city="samarinda", officers=True)
    make_staff(core, "200", "officer", "DLH")
    assert "misalnya: /status SMD-2611-0042" in texts(core.text("100", "/status"))
    assert "misalnya: /lihat SMD-2611-0042" in texts(core.text("200", "/lihat"))
    core.clock.now = datetime(2026, 12, 31, 17, 0, tzinfo=UTC)  # 1 Jan 2027, 01:00 WITA
    assert "misalnya: /status SMD-2701-0042" in texts(core.text("100", "/status"))


def test_the_scheduling_example_is_tomorrow_at_seven(sqlite_url: str) -> None:
    core = harness(sqlite_url)
    make_admin(core, "1")
    for now, example in (
        (datetime(2026, 11, 23, 2, 0, tzinfo=UTC), "2026-11-24 07:00"),  # 10:00 WITA
        (datetime(2026, 11, 23, 17, 0, tzinfo=UTC), "2026-11-25 07:00"),  # 01:00 WITA next day
    ):
        core.clock.now = now
        core.text("1", "/siaran")
        core.text("1", "Vaksinasi gratis di puskesmas besok pagi.")
        core.choose("1", "bc:all")
        outs = core.choose("1", "bc:later")
        assert f"misalnya {example}" in texts(outs)
        outs = core.text("1", example)  # the example itself is accepted
        assert "dijadwalkan" in texts(outs)
        when = example.split()[0].split("-")
        day = f"{int(when[2])} Nov 2026 07:00 WITA"
        assert day in texts(outs)  # confirmed in the one format
        assert day in texts(core.text("1", "/siaran_status"))


def test_times_are_written_one_way_with_the_zone(sqlite_url: str) -> None:
    core = officer_core(sqlite_url)
    make_staff(core, "200", "officer", "DLH")
    code = re.search(r"PLU-\d{4}-\d{4}", texts(file_report(core))).group(0)  # type: ignore[union-attr]
    for said in (
        texts(core.text("100", "/laporanku")),
        texts(core.text("100", f"/status {code}")),
        texts(core.text("200", "/antrian")),
        texts(core.text("200", f"/lihat {code}")),
    ):
        assert WHEN.search(said), said
        assert not re.search(r"\d\d-\d\d-\d{4}|\d\d-\d\d \d\d:\d\d", said), said


def test_a_report_at_the_same_spot_is_not_0_m_away(sqlite_url: str) -> None:
    core = officer_core(sqlite_url)
    make_staff(core, "200", "officer", "DLH")
    file_report(core)
    point = next(k for k in core.city.kelurahan if k.name == "Besusu Barat").centroid
    core.text("500", "/lapor")
    core.choose("500", "cat:sampah")
    core.text("500", "Sampah di tempat yang sama, makin banyak")
    out = core.location("500", *point)
    assert "sudah dibuat di titik yang sama" in texts(out) and "0 m" not in texts(out)
    assert "dup:new" in choice_ids(out)


def test_six_taps_from_lapor_to_a_ticket_with_gps_and_photo(sqlite_url: str) -> None:
    core = CoreHarness(sqlite_url)
    point = next(k for k in core.city.kelurahan if k.name == "Besusu Barat").centroid
    taps = [
        ("/lapor", lambda: core.text("u", "/lapor")),
        ("category", lambda: core.choose("u", "cat:jalan_rusak")),
        ("description", lambda: core.text("u", "Jalan berlubang besar di depan sekolah")),
        ("location", lambda: core.location("u", *point)),
        ("photo", lambda: core.photo("u")),
        ("send", lambda: core.choose("u", "rv:send")),
    ]
    said = ""
    for _name, tap in taps:
        said = texts(tap())
    assert "Nomor tiket" in said  # six taps (before this issue: seven, "Lanjut" after the photo)
    [rep] = core.repo_call(lambda r: list(r._s.exec(select(Report))))
    assert rep.location_source == "gps" and rep.lat is not None
    assert len(core.repo_call(lambda r: r.photos(rep.id))) == 1
