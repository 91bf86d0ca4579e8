"""SLA on Indonesian working days, and the scheduler's sweep driven by a controllable clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import inspect

from handlers import sla_jobs
from handlers.workdays import WorkCalendar, deadlines, reminder_at
from storage.db import Database, downgrade, upgrade
from storage.repo import Repo
from tests.core_harness import CoreHarness, texts
from tests.test_officer_flow import (
    ADMIN,
    CITIZEN,
    HEAD,
    OFFICER,
    code_in,
    file_report,
    make_staff,
    officer_core,
    report,
    to,
    track,
)

PALU = ZoneInfo("Asia/Makassar")  # WITA, UTC+8


def local(y: int, m: int, d: int, h: int = 10) -> datetime:
    """A moment in Palu time, as aware UTC."""
    return datetime(y, m, d, h, tzinfo=PALU).astimezone(UTC)


def test_working_days_skip_weekends_and_public_holidays() -> None:
    cal = WorkCalendar("Asia/Makassar")
    assert cal.is_workday(date(2026, 11, 23))  # Monday
    assert not cal.is_workday(date(2026, 11, 28))  # Saturday
    assert not cal.is_workday(date(2026, 8, 17))  # Independence Day (a Monday)
    assert not cal.is_workday(date(2026, 12, 25))  # Christmas (a Friday)
    # Monday 10:00 + 3 working days = Thursday 10:00 (city time)
    assert cal.add_workdays(local(2026, 11, 23), 3) == local(2026, 11, 26)
    # Thursday + 3 skips the weekend → Tuesday
    assert cal.add_workdays(local(2026, 11, 26), 3) == local(2026, 12, 1)
    # Wednesday 23 Dec + 3: Christmas Friday and the weekend are off → Tuesday 29 Dec
    assert cal.add_workdays(local(2026, 12, 23), 3) == local(2026, 12, 29)
    # Friday 14 Aug + 1: Monday 17 Aug is a holiday → Tuesday 18 Aug
    assert cal.add_workdays(local(2026, 8, 14), 1) == local(2026, 8, 18)
    # sent on Saturday: counting starts Monday 00:00 → due Thursday 00:00
    assert cal.add_workdays(local(2026, 11, 28), 3) == local(2026, 12, 3, 0)


def test_time_zone_decides_the_day() -> None:
    # Friday 23:30 in Palu is Friday 15:30 UTC; in Jakarta time it would still be Friday too,
    # but Saturday 00:30 WITA (Friday 16:30 UTC) is already the weekend in Palu.
    palu = WorkCalendar("Asia/Makassar")
    sat_early = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)  # Sat 00:30 WITA
    assert palu.local(sat_early).date() == date(2026, 11, 28)
    assert palu.add_workdays(sat_early, 1) == local(2026, 12, 1, 0)  # Mon 00:00 + 1 → Tue 00:00
    jakarta = WorkCalendar("Asia/Jakarta")  # Fri 23:30 WIB: still Friday
    assert jakarta.add_workdays(sat_early, 1) == datetime(2026, 11, 30, 16, 30, tzinfo=UTC)


def test_deadlines_reminders_and_working_time() -> None:
    cal = WorkCalendar("Asia/Makassar")
    start = local(2026, 11, 23)
    d = deadlines(cal, start, 3, 5)
    assert d.response_due == local(2026, 11, 26)
    assert d.resolution_due == local(2026, 12, 3)
    assert reminder_at(cal, start, d.response_due) == local(2026, 11, 25)
    short = cal.add_workdays(start, 1)
    assert reminder_at(cal, start, short) == start + (short - start) / 2
    # Friday 10:00 → Monday 10:00 is one working day of working time
    assert abs(cal.workdays_between(local(2026, 11, 27), local(2026, 11, 30)) - 1.0) < 1e-9
    assert cal.workdays_between(local(2026, 11, 30), local(2026, 11, 27)) == 0.0


def sweep(core: CoreHarness) -> list:
    with core.db.unit() as uow:
        outs = sla_jobs.sweep(Repo(uow), core.svc)
        uow.send(outs)
    return outs


def test_sweep_reminds_escalates_once_and_sends_the_daily_summary(db_url: str) -> None:
    core = officer_core(db_url)
    make_staff(core, OFFICER, "officer", "DLH")
    make_staff(core, HEAD, "head", "DLH")
    make_staff(core, ADMIN, "admin", None)
    core.clock.now = local(2026, 11, 23, 6)  # Monday 06:00 WITA: before the summary hour
    code = code_in(file_report(core))
    assert track(core, code).response_due_at == local(2026, 11, 26, 6)
    assert sweep(core) == []  # nothing due yet
    # Tuesday 07:30: the daily summary to the head only, once per day
    core.clock.now = local(2026, 11, 24, 7) + timedelta(minutes=30)
    outs = sweep(core)
    assert [o.address for o in outs] == [HEAD]
    assert "Ringkasan harian" in texts(outs) and "Terbuka: 1" in texts(outs)
    assert sweep(core) == []
    # Wednesday 06:10: one working day before the deadline → reminder to the OPD (privately)
    core.clock.now = local(2026, 11, 25, 6) + timedelta(minutes=10)
    outs = sweep(core)
    assert sorted(o.address for o in outs) == sorted([OFFICER, HEAD])
    assert "batas waktu tanggapan pertama" in texts(outs)
    assert sweep(core) == []  # once
    # Thursday 06:01: overdue → escalated to the head and the admins, once
    core.clock.now = local(2026, 11, 26, 6) + timedelta(minutes=1)
    outs = [o for o in sweep(core) if "Ringkasan" not in o.reply.text]
    assert sorted(o.address for o in outs) == sorted([HEAD, ADMIN])
    assert "🚨" in texts(outs) and code in texts(outs)
    assert [o for o in sweep(core) if "🚨" in o.reply.text] == []
    # a first response starts the resolution stage: its own reminder and escalation
    core.text(OFFICER, f"/proses {code}")
    rep = report(core, code)
    assert track(core, code).resolution_due_at == local(2026, 12, 3, 6) + timedelta(minutes=1)
    core.clock.now = local(2026, 12, 4, 6)  # Friday: overdue for resolution
    outs = [o for o in sweep(core) if "🚨" in o.reply.text]
    assert sorted(o.address for o in outs) == sorted([HEAD, ADMIN])
    assert "penyelesaian" in texts(outs)
    assert rep.status == "diproses"


def test_no_answer_in_ten_working_days_closes_the_report(db_url: str) -> None:
    core = officer_core(db_url)
    make_staff(core, OFFICER, "officer", "DLH")
    core.clock.now = local(2026, 11, 23)
    code = code_in(file_report(core))
    core.text(OFFICER, f"/selesai {code} sudah diangkut")
    core.clock.now = local(2026, 12, 4)  # 9 working days later
    assert not [o for o in sweep(core) if o.address == CITIZEN]
    assert track(core, code).closed_at is None
    core.clock.now = local(2026, 12, 7, 10) + timedelta(minutes=1)  # 10 working days
    outs = to(sweep(core), CITIZEN)
    assert code in texts(outs) and "ditutup" in texts(outs)
    assert track(core, code).closed_at is not None
    rid = report(core, code).id
    out = core.choose(CITIZEN, f"fb:belum:{rid}")  # too late to reopen
    assert report(core, code).status == "selesai" and "sudah menjawab" in texts(out)


def test_migration_0002_up_down_up(db_url: str) -> None:
    tables = {"invite", "queue_group", "report_follower", "report_track", "notice_log"}
    db = Database(db_url)
    assert tables <= set(inspect(db.engine).get_table_names())
    db.dispose()
    downgrade(db_url, "0001")
    db = Database(db_url)
    names = set(inspect(db.engine).get_table_names())
    db.dispose()
    assert not (tables & names) and "report" in names
    upgrade(db_url)
    db = Database(db_url)
    assert tables <= set(inspect(db.engine).get_table_names())
    db.dispose()
