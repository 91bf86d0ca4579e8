"""Announcements and early warnings are two consents: /langganan offers both, an announcement
reaches only who said yes to announcements, a warning only who chose an area, each message
comes under its own header with the date; the migration adds the consent empty (up and down,
SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from bot.alerts.audience import Everyone, Kelurahan
from storage.alert_repo import AlertRepo
from storage.db import downgrade, normalize_url, upgrade
from tests.core_harness import CoreHarness, choice_ids, texts
from tests.dbs import database_url
from tests.test_broadcast import (
    SEMPAJA_TIMUR,
    harness,
    make_admin,
    outbox,
    run_fanout,
    seed,
    service,
)


@pytest.fixture
def core(sqlite_url: str) -> CoreHarness:
    return harness(sqlite_url)


def consent(core: CoreHarness, person_id: int) -> datetime | None:
    sub = core.repo_call(lambda r: AlertRepo(r).subscriber(person_id))
    return None if sub is None else sub.announcements_at


def test_langganan_offers_both_and_each_yes_is_its_own(core: CoreHarness) -> None:
    outs = core.text("7", "/langganan")
    shown = texts(outs)
    assert "Peringatan dini (banjir, gempa)" in shown and "Pengumuman Pemkot terpisah" in shown
    assert "Anda tidak menerima pengumuman Pemkot" in shown
    assert "sub:ann:on" in choice_ids(outs)
    core.choose("7", f"sub:kel:{SEMPAJA_TIMUR}")  # warnings only
    pid = core.repo_call(lambda r: r.identity("telegram", "7").person_id)
    assert consent(core, pid) is None
    outs = core.choose("7", "sub:ann:on")
    assert "Anda akan menerima pengumuman Pemkot" in texts(outs)
    assert "sub:ann:off" in choice_ids(outs)
    assert consent(core, pid) == core.clock.now  # when the yes was given
    outs = core.choose("7", "sub:ann:off")
    assert "tidak ada pengumuman lagi" in texts(outs).lower()
    core.choose("7", "sub:ann:on")
    outs = core.text("7", "/berhenti")  # forgets both
    assert "peringatan maupun pengumuman" in texts(outs)
    assert consent(core, pid) is None
    assert core.repo_call(lambda r: AlertRepo(r).subscriptions_of(pid)) == []


def test_announcements_reach_only_who_said_yes_warnings_only_who_chose_an_area(
    core: CoreHarness,
) -> None:
    warnings_only = seed(core.db, 1000, 2, [SEMPAJA_TIMUR], announcements=False)
    both = seed(core.db, 2000, 2, [SEMPAJA_TIMUR])
    only_news = seed(core.db, 3000, 1, [])  # said yes to announcements, chose no area
    svc = service(core.db, core)
    with core.db.session() as s:
        arepo = AlertRepo(s)
        assert svc.count_recipients(arepo, Everyone()) == 3
        assert svc.count_recipients(arepo, Kelurahan([SEMPAJA_TIMUR])) == 2
        assert svc.count_recipients(arepo, Everyone(), "warning") == 4
        news = svc.new_broadcast(arepo, source="admin", audience=Everyone(), texts={"*": "Rapat"})
        warn = svc.new_warning(
            arepo, source="sensor", level="siaga", audience=Everyone(), texts={"*": "Banjir"}
        )
    run_fanout(svc)
    reached = {r.meta["person_id"] for r in outbox(core.db, news.id)}
    assert reached == set(both + only_news)
    warned = {r.meta["person_id"] for r in outbox(core.db, warn.id)}
    assert warned == set(warnings_only + both)  # not the announcements-only person


def test_each_broadcast_comes_under_its_header_with_the_date(core: CoreHarness) -> None:
    seed(core.db, 1000, 1, [SEMPAJA_TIMUR])
    svc = service(core.db, core)
    with core.db.session() as s:
        arepo = AlertRepo(s)
        news = svc.new_broadcast(arepo, source="admin", audience=Everyone(), texts={"*": "Rapat"})
        warn = svc.new_warning(
            arepo, source="sensor", level="siaga", audience=Everyone(), texts={"*": "Banjir"}
        )
        clear = svc.new_warning(
            arepo, source="sensor", level="normal", audience=Everyone(), texts={"*": "Aman"}
        )
    run_fanout(svc)
    date = "23 Nov 2026 10:00 WITA"  # the harness clock, 02:00 UTC, in Samarinda
    [row] = outbox(core.db, news.id)
    assert row.payload["text"] == f"📣 Pengumuman Pemkot Samarinda · {date}\n\nRapat"
    [row] = outbox(core.db, warn.id)
    assert row.payload["text"] == f"⚠️ Peringatan dini · {date}\n\nBanjir"
    [row] = outbox(core.db, clear.id)
    assert row.payload["text"].startswith("✅ Peringatan dini dicabut · ")


def test_siaran_names_who_everyone_really_is(core: CoreHarness) -> None:
    seed(core.db, 1000, 2, [SEMPAJA_TIMUR], announcements=False)
    seed(core.db, 2000, 1, [SEMPAJA_TIMUR])
    make_admin(core, "1")
    core.text("1", "/siaran")
    outs = core.text("1", "Kerja bakti membersihkan saluran air hari Minggu.")
    [everyone] = [c for o in outs for c in o.reply.choices if c.id == "bc:all"]
    assert "pelanggan" not in everyone.label.lower()
    assert everyone.description == "Semua yang setuju menerima pengumuman Pemkot"
    outs = core.choose("1", "bc:all")
    shown = texts(outs)
    assert "semua yang setuju menerima pengumuman" in shown
    assert re.search(r"penerima saat ini: 1\b", shown), shown  # not the 2 warning subscribers


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_migration_adds_the_consent_empty_and_goes_back(kind: str, tmp_path: Path) -> None:
    with database_url(kind, tmp_path) as url:
        engine = create_engine(normalize_url(url))
        try:
            upgrade(url, "0004")
            now = datetime(2026, 11, 1, tzinfo=UTC)
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO person (id, language, share_contact, created_at) "
                        "VALUES (1, 'id', false, :now)"
                    ),
                    {"now": now},
                )
                conn.execute(
                    text("INSERT INTO subscriber (person_id, updated_at) VALUES (1, :now)"),
                    {"now": now},
                )
            upgrade(url, "0005")
            cols = {c["name"] for c in inspect(engine).get_columns("subscriber")}
            assert "announcements_at" in cols
            assert "username" in {
                c["name"] for c in inspect(engine).get_columns("channel_identity")
            }
            with engine.connect() as conn:
                row = conn.execute(text("SELECT announcements_at FROM subscriber")).one()
            assert row[0] is None  # agreed to warnings only: no announcements
            downgrade(url, "0004")
            inspector = inspect(engine)
            assert "announcements_at" not in {
                c["name"] for c in inspector.get_columns("subscriber")
            }
            assert "username" not in {c["name"] for c in inspector.get_columns("channel_identity")}
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM subscriber")).scalar() == 1
        finally:
            engine.dispose()
