"""Citizens subscribe to warnings: /langganan, /berhenti, the offer after a first report."""

from __future__ import annotations

import pytest

from bot.alerts.wiring import build_alerts
from handlers import subscription
from storage.alert_repo import AlertRepo
from tests.core_harness import CoreHarness, choice_ids, texts

SAMARINDA_KEL = "64.72.05.1013"  # Sempaja Timur
SAMARINDA_KEC = "64.72.05"  # Samarinda Utara


def harness(url: str, city: str = "samarinda") -> CoreHarness:
    core = CoreHarness(url, city=city)
    core.svc.alerts = build_alerts(core.db, core.city, core.svc.i18n).broadcasts
    core.svc.hooks.on_report_created.append(subscription.offer_after_report)
    return core


def subs(core: CoreHarness, user: str) -> list[str]:
    def read(repo):  # type: ignore[no-untyped-def]
        ident = repo.identity("telegram", user)
        return sorted(s.kode_kel for s in AlertRepo(repo).subscriptions_of(ident.person_id))

    return core.repo_call(read)


@pytest.fixture
def core(sqlite_url: str) -> CoreHarness:
    return harness(sqlite_url)


def test_pick_kecamatan_then_kelurahan_then_more(core: CoreHarness) -> None:
    outs = core.text("7", "/langganan")
    assert "Anda belum menerima peringatan" in texts(outs)
    assert f"sub:kec:{SAMARINDA_KEC}" in choice_ids(outs)
    assert any(o.reply.ask_location for o in outs)  # or share a home location
    outs = core.choose("7", f"sub:kec:{SAMARINDA_KEC}")
    kel_buttons = [c for c in choice_ids(outs) if c.startswith("sub:kel:")]
    assert f"sub:kel:{SAMARINDA_KEL}" in kel_buttons
    assert all(c.startswith(f"sub:kel:{SAMARINDA_KEC}.") for c in kel_buttons)
    outs = core.choose("7", f"sub:kel:{SAMARINDA_KEL}")
    assert "Sempaja Timur" in texts(outs)
    core.choose("7", "sub:kel:64.72.08.1003")  # Gunung Lingai: several are allowed
    outs = core.choose("7", f"sub:kel:{SAMARINDA_KEL}")  # again: no duplicate
    assert subs(core, "7") == ["64.72.05.1013", "64.72.08.1003"]
    outs = core.choose("7", "sub:done")
    assert core.step("7") is None
    shown = texts(core.text("7", "/langganan"))
    assert "Sempaja Timur" in shown and "Gunung Lingai" in shown


def test_typed_kelurahan_name_is_matched(core: CoreHarness) -> None:
    core.text("8", "/langganan")
    outs = core.text("8", "temindung permai")
    assert "Temindung Permai" in texts(outs)
    assert subs(core, "8") == ["64.72.08.1001"]
    outs = core.text("8", "zzzz qqqq")
    assert "tidak dapat menemukan" in texts(outs).lower()


def test_home_location_subscribes_its_kelurahan_and_keeps_the_point(core: CoreHarness) -> None:
    kel = core.city.kelurahan_by_code(SAMARINDA_KEL)
    assert kel is not None
    core.text("9", "/langganan")
    outs = core.location("9", *kel.centroid)
    assert "Sempaja Timur" in texts(outs)
    assert subs(core, "9") == [SAMARINDA_KEL]

    def home(repo):  # type: ignore[no-untyped-def]
        ident = repo.identity("telegram", "9")
        sub = AlertRepo(repo).subscriber(ident.person_id)
        return sub.home_lat, sub.home_lon, sub.home_kel

    lat, lon, code = core.repo_call(home)
    assert (round(lat, 4), round(lon, 4), code) == (
        round(kel.centroid[0], 4),
        round(kel.centroid[1], 4),
        SAMARINDA_KEL,
    )
    # outside the city: refused, nothing saved
    core.text("10", "/langganan")
    outs = core.location("10", -6.2, 106.8)
    assert "di luar" in texts(outs)


def test_berhenti_forgets_everything(core: CoreHarness) -> None:
    core.text("11", "/langganan")
    core.choose("11", f"sub:kel:{SAMARINDA_KEL}")
    kel = core.city.kelurahan_by_code(SAMARINDA_KEL)
    assert kel is not None
    core.text("11", "/langganan")
    core.location("11", *kel.centroid)
    outs = core.text("11", "/berhenti")
    assert "/langganan" in texts(outs)
    assert subs(core, "11") == []
    assert "Anda belum menerima peringatan" in texts(core.text("11", "/langganan"))
    outs = core.text("12", "/berhenti")  # never subscribed
    assert "/langganan" in texts(outs)


def file_report(core: CoreHarness, user: str, kel_code: str) -> list:
    kel = core.city.kelurahan_by_code(kel_code)
    assert kel is not None
    core.text(user, "/lapor")
    core.choose(user, f"cat:{core.city.categories[0].key}")
    core.text(user, "Air menggenang setinggi lutut di jalan depan rumah")
    core.location(user, *kel.centroid)
    core.choose(user, "ph:done")
    return core.choose(user, "rv:send")


def test_first_report_offers_warnings_once(core: CoreHarness) -> None:
    outs = file_report(core, "20", SAMARINDA_KEL)
    assert f"sub:offer:{SAMARINDA_KEL}" in choice_ids(outs)
    assert "Sempaja Timur" in texts(outs)
    outs = core.choose("20", f"sub:offer:{SAMARINDA_KEL}")
    assert "/berhenti" in texts(outs)
    assert subs(core, "20") == [SAMARINDA_KEL]
    # second report: not asked again
    outs = file_report(core, "20", "64.72.08.1003")
    assert not [c for c in choice_ids(outs) if c.startswith("sub:")]


def test_offer_declined_is_not_repeated(core: CoreHarness) -> None:
    outs = file_report(core, "21", SAMARINDA_KEL)
    assert "sub:no" in choice_ids(outs)
    outs = core.choose("21", "sub:no")
    assert "/langganan" in texts(outs)
    assert subs(core, "21") == []


def test_the_offer_is_recorded_by_one_statement_only_when_due(db_url: str) -> None:
    """`offer_after_first_report` on SQLite and PostgreSQL: only after a first report, only to
    someone without warnings set up (no home point, not following the kelurahan), never
    twice."""
    from storage.db import Database, utcnow
    from storage.models import Report
    from storage.repo import Repo

    db = Database(db_url)

    def person_with_reports(ext: str, n: int) -> int:
        with db.unit() as uow:
            repo = Repo(uow)
            ident, _p, _new = repo.get_or_create_identity("telegram", ext, ext, language="id")
            for i in range(n):
                now = utcnow()
                repo.add_report(
                    Report(
                        code=f"SMD-2611-{ext}{i}",
                        person_id=ident.person_id,
                        channel="telegram",
                        category="banjir",
                        description="Air menggenang",
                        kode_kel=SAMARINDA_KEL,
                        opd="bpbd",
                        created_at=now,
                        updated_at=now,
                    )
                )
            return ident.person_id

    def offer(pid: int) -> bool:
        with db.session() as s:
            return AlertRepo(s).offer_after_first_report(pid, SAMARINDA_KEL)

    try:
        first = person_with_reports("31", 1)
        assert offer(first) is True
        assert offer(first) is False  # asked once only
        assert offer(person_with_reports("32", 0)) is False  # no report yet
        assert offer(person_with_reports("33", 2)) is False  # not the first one

        follower = person_with_reports("34", 1)
        with db.session() as s:
            assert AlertRepo(s).subscribe(follower, SAMARINDA_KEL)
        assert offer(follower) is False  # already gets warnings for it

        homed = person_with_reports("35", 1)
        with db.session() as s:
            AlertRepo(s).set_home(homed, -0.45, 117.15, SAMARINDA_KEL)
        assert offer(homed) is False  # warnings already set up (a home point)

        with db.session() as s:
            row = AlertRepo(s).subscriber(first)
            assert row is not None and row.offered_at is not None  # the record of the offer
    finally:
        db.dispose()
