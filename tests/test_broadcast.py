"""Admin announcements (/siaran) and the broadcast fan-out into the outbox."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.alerts.audience import Circle, Everyone, Kelurahan
from bot.alerts.broadcasts import JOB_START_BROADCAST, Broadcasts
from bot.alerts.wiring import build_alerts
from handlers import subscription
from handlers.events import PRIORITY_ANNOUNCEMENT, PRIORITY_WARNING
from storage.alert_models import BC_CANCELLED, BC_QUEUED, BC_SCHEDULED, BC_SENDING
from storage.alert_repo import AlertRepo
from storage.db import Database
from storage.models import ROLE_ADMIN, OutboxItem, ScheduledJob
from storage.repo import Repo
from tests.core_harness import CoreHarness, choice_ids, texts

SEMPAJA_TIMUR = "64.72.05.1013"
GUNUNG_LINGAI = "64.72.08.1003"
OTHER = "64.72.10.1003"  # Sengkotek, far away


def service(db: Database, core: CoreHarness, batch: int = 500) -> Broadcasts:
    return build_alerts(db, core.city, core.svc.i18n, batch=batch).broadcasts


def harness(url: str) -> CoreHarness:
    core = CoreHarness(url, city="samarinda")
    core.svc.alerts = service(core.db, core)
    core.svc.hooks.on_report_created.append(subscription.offer_after_report)
    return core


def seed(
    db: Database,
    start: int,
    n: int,
    kel: list[str],
    lang: str = "id",
    channels: tuple[str, ...] = ("telegram",),
    announcements: bool = True,
) -> list[int]:
    """n subscribers, external ids start..start+n-1 (one identity per channel), who also
    said yes to announcements (unless `announcements=False`)."""
    ids = []
    with db.session() as s:
        repo, arepo = Repo(s), AlertRepo(s)
        for i in range(start, start + n):
            _ident, person, _ = repo.get_or_create_identity(
                channels[0], str(i), str(i), language=lang
            )
            assert person.id is not None
            for ch in channels[1:]:
                repo.get_or_create_identity(ch, f"62{i}", f"62{i}", language=lang)
                other = repo.identity(ch, f"62{i}")
                assert other is not None
                other.person_id = person.id
                s.add(other)
            for code in kel:
                arepo.subscribe(person.id, code)
            if announcements:
                arepo.set_announcements(person.id, True)
            ids.append(person.id)
    return ids


def make_admin(core: CoreHarness, user: str) -> None:
    core.text(user, "/start")

    def promote(repo: Repo) -> None:
        ident = repo.identity("telegram", user)
        assert ident is not None
        repo.set_staff(ident.person_id, ROLE_ADMIN, None)

    core.repo_call(promote)


def outbox(db: Database, broadcast_id: int | None = None) -> list[OutboxItem]:
    with db.session() as s:
        q = select(OutboxItem).where(OutboxItem.broadcast_id != None)  # noqa: E711
        if broadcast_id is not None:
            q = q.where(OutboxItem.broadcast_id == broadcast_id)
        return list(s.exec(q.order_by(OutboxItem.id)))


def run_fanout(svc: Broadcasts, limit: int = 10_000) -> None:
    for _ in range(limit):
        if svc.fanout_step() is None:
            return
    raise AssertionError("fan-out did not finish")


@pytest.fixture
def core(sqlite_url: str) -> CoreHarness:
    return harness(sqlite_url)


# --- who may broadcast ---------------------------------------------------------------------
def test_non_admins_are_refused_clearly(core: CoreHarness) -> None:
    for cmd in ("/siaran", "/siaran_status", "/siaran_batal 1"):
        outs = core.text("55", cmd)
        assert "hanya administrator" in texts(outs)
    assert core.step("55") is None
    with core.db.session() as s:
        assert AlertRepo(s).recent_broadcasts() == []


# --- the /siaran conversation -------------------------------------------------------------------
def test_admin_announcement_to_kelurahan_with_count_preview_and_send(core: CoreHarness) -> None:
    seed(core.db, 1000, 3, [SEMPAJA_TIMUR])
    seed(core.db, 2000, 2, [OTHER])
    make_admin(core, "1")
    core.text("1", "/siaran")
    outs = core.text("1", "Kerja bakti membersihkan saluran air hari Minggu pukul 07.00.")
    assert "bc:kel" in choice_ids(outs)
    core.choose("1", "bc:kel")
    outs = core.text("1", "sempaja timur, kelurahan tidak ada")
    assert "kelurahan tidak ada" in texts(outs)  # an unknown name is named, nothing sent
    outs = core.text("1", "Sempaja Timur")
    shown = texts(outs)
    assert "Kerja bakti" in shown  # the preview
    assert "Sempaja Timur" in shown and "3" in shown  # audience and recipient count
    assert {"bc:send", "bc:later", "bc:cancel"} <= set(choice_ids(outs))
    outs = core.choose("1", "bc:send")
    assert "/siaran_status" in texts(outs)
    assert core.step("1") is None
    with core.db.session() as s:
        (bc,) = AlertRepo(s).recent_broadcasts()
    assert bc.state == BC_QUEUED and bc.priority == PRIORITY_ANNOUNCEMENT
    assert bc.audience == {"type": "kelurahan", "codes": [SEMPAJA_TIMUR]}
    run_fanout(core.svc.alerts)
    rows = outbox(core.db, bc.id)
    assert sorted(r.address for r in rows) == ["1000", "1001", "1002"]
    assert {r.priority for r in rows} == {PRIORITY_ANNOUNCEMENT}
    assert {r.kind for r in rows} == {"announcement"}
    outs = core.text("1", "/siaran_status")
    assert f"#{bc.id}" in texts(outs) and "antre 3" in texts(outs)


def test_kecamatan_toggle_and_circle_audiences(core: CoreHarness) -> None:
    make_admin(core, "1")
    core.text("1", "/siaran")
    core.text("1", "Pemadaman listrik terjadwal besok.")
    core.choose("1", "bc:kec")
    core.choose("1", "bc:k:64.72.05")
    core.choose("1", "bc:k:64.72.08")
    outs = core.choose("1", "bc:k:64.72.05")  # pressed again: removed
    assert "1" in texts(outs)
    core.choose("1", "bc:ok")
    _step, data = core.repo_call(lambda r: r.conversation_state(r.identity("telegram", "1").id))
    assert data["audience"] == {"type": "kecamatan", "codes": ["64.72.08"]}
    core.choose("1", "bc:cancel")
    core.text("1", "/siaran")
    core.text("1", "Jalan ditutup untuk perbaikan.")
    core.choose("1", "bc:circle")
    kel = core.city.kelurahan_by_code(SEMPAJA_TIMUR)
    assert kel is not None
    core.location("1", *kel.centroid)
    outs = core.text("1", "99")
    assert "50" in texts(outs)  # radius limit explained
    outs = core.text("1", "1,5")
    assert "bc:send" in choice_ids(outs)


def test_scheduled_announcement_is_persisted_and_started_by_its_job(core: CoreHarness) -> None:
    seed(core.db, 1000, 2, [SEMPAJA_TIMUR])
    make_admin(core, "1")
    core.text("1", "/siaran")
    core.text("1", "Vaksinasi gratis di puskesmas besok pagi.")
    core.choose("1", "bc:all")
    core.choose("1", "bc:later")
    outs = core.text("1", "kemarin")
    assert "satu menit" in texts(outs)  # not understood: asked again
    when = (core.clock.now + timedelta(hours=2)).astimezone(ZoneInfo("Asia/Makassar"))
    outs = core.text("1", when.strftime("%Y-%m-%d %H:%M"))
    assert "/siaran_batal" in texts(outs)
    with core.db.session() as s:
        (bc,) = AlertRepo(s).recent_broadcasts()
        job = s.get(ScheduledJob, bc.job_id)
    assert bc.state == BC_SCHEDULED and job is not None
    assert job.kind == JOB_START_BROADCAST and job.args == {"broadcast_id": bc.id}
    assert abs((job.run_at - core.clock.now).total_seconds() - 7200) < 60
    svc: Broadcasts = core.svc.alerts
    assert svc.fanout_step() is None  # not due yet: nothing written
    asyncio.run(svc.on_scheduled_job(dict(job.args)))
    run_fanout(svc)
    assert len(outbox(core.db, bc.id)) == 2


def test_siaran_batal_stops_a_running_broadcast(core: CoreHarness) -> None:
    seed(core.db, 1000, 5, [SEMPAJA_TIMUR])
    make_admin(core, "1")
    svc: Broadcasts = core.svc.alerts
    with core.db.session() as s:
        bc = svc.new_broadcast(
            AlertRepo(s), source="admin", audience=Everyone(), texts={"*": "Uji coba"}
        )
    run_fanout(svc)
    outs = core.text("1", f"/siaran_batal {bc.id}")
    assert "5" in texts(outs)
    assert {r.state for r in outbox(core.db, bc.id)} == {"cancelled"}
    with core.db.session() as s:
        assert AlertRepo(s).broadcast(bc.id).state == BC_CANCELLED  # type: ignore[union-attr]
    outs = core.text("1", f"/siaran_batal {bc.id}")
    assert "sudah selesai" in texts(outs)


# --- fan-out -------------------------------------------------------------------------------------
def test_fanout_one_row_per_identity_in_each_language_deduplicated(sqlite_url: str) -> None:
    core = harness(sqlite_url)
    db = core.db
    both = seed(db, 100, 2, [SEMPAJA_TIMUR, GUNUNG_LINGAI], lang="en")  # two matching kel
    two_channels = seed(db, 200, 1, [SEMPAJA_TIMUR], channels=("telegram", "whatsapp"))
    seed(db, 300, 3, [OTHER])
    svc = service(db, core, batch=2)
    with db.session() as s:
        bc = svc.new_broadcast(
            AlertRepo(s),
            source="admin",
            audience=Kelurahan([SEMPAJA_TIMUR, GUNUNG_LINGAI]),
            texts={"id": "Banjir!", "en": "Flood!"},
        )
    run_fanout(svc)
    rows = outbox(db, bc.id)
    by_person = Counter(r.meta["person_id"] for r in rows)
    assert by_person == {both[0]: 1, both[1]: 1, two_channels[0]: 2}
    assert {r.channel for r in rows if r.meta["person_id"] == two_channels[0]} == {
        "telegram",
        "whatsapp",
    }

    def body(row: OutboxItem) -> str:  # under the header ("📣 Pengumuman Pemkot …")
        return str(row.payload["text"]).split("\n\n", 1)[1]

    assert {body(r) for r in rows if r.meta["person_id"] in both} == {"Flood!"}
    assert {body(r) for r in rows if r.meta["person_id"] == two_channels[0]} == {"Banjir!"}
    with db.session() as s:
        done = AlertRepo(s).broadcast(bc.id)
    assert done is not None and done.state == BC_SENDING
    assert (done.recipients, done.messages) == (3, 4)


def test_circle_reaches_home_points_and_touched_kelurahan(sqlite_url: str) -> None:
    core = harness(sqlite_url)
    kel = core.city.kelurahan_by_code(SEMPAJA_TIMUR)
    assert kel is not None
    (home_person,) = seed(core.db, 400, 1, [])
    with core.db.session() as s:
        AlertRepo(s).set_home(home_person, kel.centroid[0] + 0.001, kel.centroid[1], None)
    (kel_person,) = seed(core.db, 401, 1, [SEMPAJA_TIMUR])
    seed(core.db, 402, 1, [OTHER])
    svc = service(core.db, core)
    with core.db.session() as s:
        n = svc.count_recipients(AlertRepo(s), Circle(*kel.centroid, 1.0))
        bc = svc.new_broadcast(
            AlertRepo(s), source="admin", audience=Circle(*kel.centroid, 1.0), texts={"*": "x"}
        )
    run_fanout(svc)
    assert n == 2
    assert sorted(r.meta["person_id"] for r in outbox(core.db, bc.id)) == [
        home_person,
        kel_person,
    ]


def test_fanout_crash_mid_batch_redoes_it_without_duplicates(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = harness(sqlite_url)
    people = seed(core.db, 1000, 23, [SEMPAJA_TIMUR])
    svc = service(core.db, core, batch=5)
    with core.db.session() as s:
        bc = svc.new_broadcast(AlertRepo(s), source="admin", audience=Everyone(), texts={"*": "x"})
    svc.fanout_step()
    svc.fanout_step()
    real = AlertRepo.advance_cursor
    calls = {"n": 0}

    def crash(self, *a, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        raise RuntimeError("killed mid-batch")

    monkeypatch.setattr(AlertRepo, "advance_cursor", crash)
    with pytest.raises(RuntimeError):
        svc.fanout_step()  # rows of the 3rd batch were inserted, then the "process died"
    monkeypatch.setattr(AlertRepo, "advance_cursor", real)
    fresh = service(core.db, core, batch=5)  # a restarted process
    run_fanout(fresh)
    counts = Counter(r.meta["person_id"] for r in outbox(core.db, bc.id))
    assert counts == dict.fromkeys(people, 1)  # nobody twice, nobody skipped


def test_two_workers_racing_write_each_row_once(sqlite_url: str) -> None:
    core = harness(sqlite_url)
    people = seed(core.db, 1000, 60, [SEMPAJA_TIMUR])
    with core.db.session() as s:
        bc = service(core.db, core).new_broadcast(
            AlertRepo(s), source="admin", audience=Everyone(), texts={"*": "x"}
        )
    workers = [service(Database(sqlite_url), core, batch=4) for _ in range(2)]
    errors: list[BaseException] = []

    def work(svc: Broadcasts) -> None:
        try:
            run_fanout(svc)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    counts = Counter(r.meta["person_id"] for r in outbox(core.db, bc.id))
    assert counts == dict.fromkeys(people, 1)


def test_a_warning_overtakes_a_running_announcement(sqlite_url: str) -> None:
    core = harness(sqlite_url)
    seed(core.db, 1000, 20, [SEMPAJA_TIMUR])
    svc = service(core.db, core, batch=5)
    with core.db.session() as s:
        ann = svc.new_broadcast(AlertRepo(s), source="admin", audience=Everyone(), texts={"*": "a"})
    svc.fanout_step()  # 5 of 20 announcement rows
    with core.db.session() as s:
        warn = svc.new_warning(
            AlertRepo(s),
            source="sensor",
            level="awas",
            audience=Kelurahan([SEMPAJA_TIMUR]),
            texts={"id": "AWAS", "en": "AWAS"},
        )
    for _ in range(4):
        svc.fanout_step()
    assert len(outbox(core.db, warn.id)) == 20  # the warning was fanned out first
    assert len(outbox(core.db, ann.id)) == 5
    run_fanout(svc)
    assert len(outbox(core.db, ann.id)) == 20
    assert {r.priority for r in outbox(core.db, warn.id)} == {PRIORITY_WARNING}
    with core.db.session() as s:
        due = Repo(s).outbox_take(
            core.clock.now + timedelta(days=1), channels=["telegram"], limit=40, slot=0
        )
    assert [r.broadcast_id for r in due] == [warn.id] * 20  # sent first, each chat's next after


def test_inactive_identities_get_nothing(sqlite_url: str) -> None:
    core = harness(sqlite_url)
    a, _b = seed(core.db, 1000, 2, [SEMPAJA_TIMUR])
    with core.db.session() as s:
        repo = Repo(s)
        ident = repo.identity("telegram", "1001")
        assert ident is not None and ident.id is not None
        repo.deactivate_identity(ident.id)
    svc = service(core.db, core)
    with core.db.session() as s:
        bc = svc.new_broadcast(AlertRepo(s), source="admin", audience=Everyone(), texts={"*": "x"})
        assert svc.count_recipients(AlertRepo(s), Everyone()) == 1
    run_fanout(svc)
    assert [r.meta["person_id"] for r in outbox(core.db, bc.id)] == [a]
