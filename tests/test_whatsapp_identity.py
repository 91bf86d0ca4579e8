"""One WhatsApp account is one person, whether Meta names it by phone number (`wa_id`) or by
business-scoped user id (BSUID), and look-ups by phone find that person.

On SQLite and on PostgreSQL, through `handlers.core.begin` (what every inbox round runs) and
the storage calls the command line and Open311 use.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlmodel import select

from handlers.core import begin
from handlers.events import Inbound, Outgoing, Reply
from storage.alert_models import Subscription
from storage.db import Database
from storage.models import (
    ROLE_OFFICER,
    ChannelIdentity,
    Conversation,
    OutboxItem,
    Person,
    Report,
    Staff,
)
from storage.people import phone_digits
from storage.repo import Repo
from storage.work_models import ReportFollower

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
PHONE = "6281311112222"
BSUID = "ID.5566778899001122334"
SVC: Any = SimpleNamespace(i18n=SimpleNamespace(default="id"))


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url, clock=lambda: NOW)
    yield database
    database.dispose()


def message(user_id: str | None, wa_id: str | None) -> Inbound:
    """What the WhatsApp adapter makes of a message (`external_id` the BSUID if any)."""
    key = user_id or wa_id
    assert key is not None
    return Inbound(
        channel="whatsapp", external_id=key, chat_id=wa_id or key, kind="text", phone=wa_id
    )


def receive(db: Database, ev: Inbound) -> tuple[int, int]:
    """One inbox round for `ev`: (identity id, person id) it was handled as."""
    with db.unit() as uow:
        repo = Repo(uow)
        begin(repo, SVC, [ev])
        ident, person, _new = repo.get_or_create_identity(
            ev.channel, ev.external_id, ev.chat_id or ev.external_id, language="id", phone=ev.phone
        )
        return ident.id, person.id


def report(person_id: int, code: str) -> Report:
    return Report(
        code=code,
        person_id=person_id,
        channel="whatsapp",
        category="jalan_rusak",
        description="Jalan berlubang",
        opd="PUPR",
        created_at=NOW,
        updated_at=NOW,
    )


def rows(db: Database, model: Any) -> list[Any]:
    with db.session() as s:
        return list(s.exec(select(model)))


def test_an_account_known_by_phone_takes_the_user_id_and_keeps_its_person(db: Database) -> None:
    ident_id, person_id = receive(db, message(None, PHONE))  # before Meta sent user ids
    with db.unit() as uow:
        Repo(uow).set_staff(person_id, ROLE_OFFICER, "PUPR")
        uow.session.add(report(person_id, "PLU-2611-0001"))
        Repo(uow).save_conversation(ident_id, "officer.proof", {"report": 1})

    assert receive(db, message(BSUID, PHONE)) == (ident_id, person_id)

    [ident] = rows(db, ChannelIdentity)
    assert (ident.external_id, ident.address) == (BSUID, PHONE)
    assert [p.id for p in rows(db, Person)] == [person_id]
    assert [(s.person_id, s.role) for s in rows(db, Staff)] == [(person_id, ROLE_OFFICER)]
    assert [c.step for c in rows(db, Conversation)] == ["officer.proof"]
    # Later messages (with both ids, or the user id alone) are the same identity.
    assert receive(db, message(BSUID, PHONE)) == (ident_id, person_id)
    assert receive(db, message(BSUID, None)) == (ident_id, person_id)


def test_two_people_of_one_account_become_one_keeping_role_and_reports(db: Database) -> None:
    """The split that happened before this fix: the officer wrote by phone; the same person
    later wrote with a user id only and became a second person. The first message with both
    ids makes them one again."""
    old_ident, officer = receive(db, message(None, PHONE))
    new_ident, newcomer = receive(db, message(BSUID, None))
    other_ident, other = receive(db, message(None, "6289900001111"))
    assert len({officer, newcomer, other}) == 3
    with db.unit() as uow:
        repo = Repo(uow)
        repo.set_staff(officer, ROLE_OFFICER, "PUPR")
        s = uow.session
        s.add_all([report(officer, "PLU-2611-0001"), report(newcomer, "PLU-2611-0002")])
        s.add_all([report(other, "PLU-2611-0003")])
        s.flush()
        followed = next(r.id for r in s.exec(select(Report).where(Report.person_id == other)))
        for pid in (officer, newcomer):  # both follow the third person's report
            s.add(ReportFollower(report_id=followed, person_id=pid, created_at=NOW))
            s.add(Subscription(person_id=pid, kode_kel="72.71.01.1004", created_at=NOW))
        s.add(Subscription(person_id=newcomer, kode_kel="72.71.01.1005", created_at=NOW))
        repo.save_conversation(old_ident, "officer.proof", {"report": 1})
        repo.save_conversation(new_ident, "report.description", {"category": "banjir"})
        uow.send([Outgoing("whatsapp", PHONE, Reply("Kartu laporan"), identity_id=old_ident)])

    assert receive(db, message(BSUID, PHONE)) == (new_ident, officer)

    people = {p.id for p in rows(db, Person)}
    assert people == {officer, other}  # the officer (staff) is the one kept
    idents = {i.id: (i.person_id, i.external_id, i.address) for i in rows(db, ChannelIdentity)}
    assert idents == {
        new_ident: (officer, BSUID, PHONE),
        other_ident: (other, "6289900001111", "6289900001111"),
    }
    assert [(s.person_id, s.role, s.opd) for s in rows(db, Staff)] == [
        (officer, ROLE_OFFICER, "PUPR")
    ]
    assert sorted((r.code, r.person_id) for r in rows(db, Report)) == [
        ("PLU-2611-0001", officer),
        ("PLU-2611-0002", officer),
        ("PLU-2611-0003", other),
    ]
    assert [(f.report_id, f.person_id) for f in rows(db, ReportFollower)] == [(followed, officer)]
    assert sorted((s.person_id, s.kode_kel) for s in rows(db, Subscription)) == [
        (officer, "72.71.01.1004"),
        (officer, "72.71.01.1005"),
    ]
    # The identity in use keeps its own conversation; the queued card still goes out.
    assert [(c.identity_id, c.step) for c in rows(db, Conversation)] == [
        (new_ident, "report.description")
    ]
    assert [(o.identity_id, o.address, o.state) for o in rows(db, OutboxItem)] == [
        (new_ident, PHONE, "pending")
    ]


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("6281311112222", "6281311112222"),
        ("+62 813-1111-2222", "6281311112222"),
        ("+62 (813) 1111.2222", "6281311112222"),
        ("081311112222", None),  # no country code
        ("62813abc", None),
        ("١٢٣٤٥٦٧٨٩", None),  # digits, but not ASCII ones
        ("6281", None),
        ("6" * 16, None),
    ],
)
def test_phone_numbers_are_read_as_whatsapp_writes_them(raw: str, digits: str | None) -> None:
    assert phone_digits(raw) == digits


def test_a_phone_number_finds_its_person_whatever_the_key(db: Database) -> None:
    ident_id, person_id = receive(db, message(BSUID, PHONE))  # keyed by user id
    with db.unit() as uow:
        ident, person, created = Repo(uow).whatsapp_identity_for_phone(PHONE, language="id")
    assert (ident.id, person.id, created) == (ident_id, person_id, False)

    # A number that never wrote: a new person whose identity is outside the 24 h window.
    with db.unit() as uow:
        ident, person, created = Repo(uow).whatsapp_identity_for_phone(
            "6281399998888", language="id"
        )
    assert created and ident.last_inbound_at is None and person.phone == "6281399998888"
    with db.session() as s:
        row = s.get(ChannelIdentity, ident.id)
        assert row is not None and row.last_inbound_at is None
    with db.unit() as uow:  # asked again: the same one
        again, _p, created = Repo(uow).whatsapp_identity_for_phone("6281399998888", language="id")
    assert (again.id, created) == (ident.id, False)

    # When that number writes (with its user id), it is that person, now inside the window.
    assert receive(db, message("ID.4242424242", "6281399998888")) == (ident.id, person.id)
    with db.session() as s:
        row = s.get(ChannelIdentity, ident.id)
        assert row is not None and row.external_id == "ID.4242424242"
        assert row.last_inbound_at is not None


async def test_a_number_that_never_wrote_gets_the_status_template(
    db: Database, tmp_path: Path
) -> None:
    """Through the sender, which reads the window with its claim as the app does: what goes to
    an identity made for a phone number (no `last_inbound_at`) is sent as the status
    template, never free-form first."""
    from bot.channels.whatsapp import WhatsAppChannel
    from bot.sender import Sender
    from handlers.events import Outgoing
    from tests.fakes.graph_api import FakeGraphAPI
    from tests.test_sender import run_until
    from tests.test_whatsapp_adapter import COMMANDS, FakeI18n, make_settings

    with db.unit() as uow:
        ident, _person, _created = Repo(uow).whatsapp_identity_for_phone(PHONE, language="id")
        text = "Laporan PLU-2612-0001 diterima.\nKami kabari perkembangannya."
        uow.send([Outgoing("whatsapp", PHONE, Reply(text), identity_id=ident.id, kind="status")])

    async with FakeGraphAPI(token="graph-token") as graph:
        graph.fail_always(PHONE, 131047)  # Meta refuses free-form: the number never wrote
        channel = WhatsAppChannel(
            make_settings(tmp_path, graph.base_url), FakeI18n(), lambda *a: None, COMMANDS
        )
        try:
            sender = Sender(db, {"whatsapp": channel.transport})
            await run_until(sender, lambda: len(graph.sent) >= 1)
        finally:
            await channel.stop()
    [sent] = graph.sent
    assert sent.type == "template" and sent.content["name"] == "status_laporan"
    param = sent.content["components"][0]["parameters"][0]["text"]
    assert param == "Laporan PLU-2612-0001 diterima. Kami kabari perkembangannya."
    assert graph.counters["error_131047"] == 0  # no free-form attempt first
