"""End to end on WhatsApp: nothing lost outside the 24-hour window, nobody split in two.

The real `lapor run` process against the fake Graph API, which refuses what Meta refuses
(131047 for free-form outside the window when told so, 132018 for a template parameter with a
new-line, a tab or more than 4 spaces, 132005 for a body over 1024 characters).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from storage.db import utcnow
from storage.models import ChannelIdentity, OutboxItem, Person, Staff
from tests.dbs import database_url
from tests.e2e import health, wait_until
from tests.fakes.graph_api import (
    WA_ID,
    SentMessage,
    button_reply,
    list_reply,
    location_message,
    status,
    text_message,
    webhook_body,
)
from tests.fakes.procs import REPO
from tests.test_e2e_whatsapp import (
    BESUSU_BARAT,
    CODE_RE,
    OFFICER,
    WaBot,
    pending,
    running_wa_bot,
    text_of,
)

pytestmark = pytest.mark.e2e

OFFICER_BSUID = "ID.3300112233445566778"
ADMIN_PHONE = "6281300000099"
ADMIN_BSUID = "ID.7700998877665544332"


@pytest.fixture(params=["sqlite", "postgres"])
def wa_bot(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WaBot]:
    with database_url(request.param, tmp_path) as url, running_wa_bot(url, tmp_path) as b:
        yield b


@pytest.fixture
def sqlite_wa_bot(tmp_path: Path) -> Iterator[WaBot]:
    with running_wa_bot(f"sqlite:///{tmp_path / 'wa.db'}", tmp_path) as b:
        yield b


@pytest.fixture
def no_status_template_bot(tmp_path: Path) -> Iterator[WaBot]:
    """No approved status template configured (WHATSAPP_TEMPLATE_STATUS empty)."""
    url = f"sqlite:///{tmp_path / 'wa.db'}"
    with running_wa_bot(url, tmp_path, WHATSAPP_TEMPLATE_STATUS="") as b:
        yield b


def lapor(bot: WaBot, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """The real command line against the bot's database."""
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=REPO,
        env={**os.environ, **bot.proc.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode == 0) == ok, done.stderr
    return done


def register_officer(bot: WaBot, opd: str, wa_id: str = OFFICER) -> None:
    code = lapor(bot, "invite", "--opd", opd).stdout.strip()
    assert "Selamat bergabung" in text_of(bot.say(f"daftar {code}", wa_id=wa_id))


def age(bot: WaBot, address: str, hours: int) -> None:
    """Move someone's last message `hours` back. A real process cannot wait 24 hours: this is
    the one direct write to its database, on purpose."""
    with bot.db().session() as s:
        q = select(ChannelIdentity).where(ChannelIdentity.address == address)
        for row in s.exec(q):
            row.last_inbound_at = utcnow() - timedelta(hours=hours)
            s.add(row)


def report_pothole(bot: WaBot) -> str:
    """A citizen (WA_ID) reports a damaged road (Dinas PUPR); the report's code."""
    bot.say("lapor")
    bot.send(list_reply("cat:jalan_rusak", "Jalan rusak"))
    bot.say("Jalan berlubang dalam di depan kantor lurah,\nsudah dua minggu")
    bot.send(location_message(*BESUSU_BARAT))
    bot.send(button_reply("ph:done", "Lanjut"))
    code = CODE_RE.search(text_of(bot.send(list_reply("rv:send", "Kirim"))))
    assert code
    # the confirmation's transaction may hold more (the warnings offer): all of it sent
    wait_until(lambda: not pending(bot), what="the report's messages sent")
    return code.group(0)


def new_messages(bot: WaBot, address: str, before: int, what: str) -> list[SentMessage]:
    wait_until(lambda: len(bot.graph.sent_to(address)) > before, timeout=20, what=what)
    return bot.graph.sent_to(address)[before:]


def parameter(msg: SentMessage) -> str:
    assert msg.type == "template", f"expected a template, got {msg.type}"
    [param] = msg.content["components"][0]["parameters"]
    text: str = param["text"]
    return text


def outbox(bot: WaBot) -> list[OutboxItem]:
    with bot.db().session() as s:
        return list(s.exec(select(OutboxItem).order_by(col(OutboxItem.id))))


def test_outside_the_window_cards_and_status_changes_go_as_valid_templates(
    wa_bot: WaBot,
) -> None:
    bot = wa_bot
    register_officer(bot, "PUPR")
    age(bot, OFFICER, 25)

    # The new-report card reaches the officer who has not written for a day: as the status
    # template, the card on one line.
    before = len(bot.graph.sent_to(OFFICER))
    code = report_pothole(bot)
    [card] = new_messages(bot, OFFICER, before, "the new-report card")
    assert card.content["name"] == "status_laporan"
    assert code in parameter(card) and "Jalan berlubang" in parameter(card)

    # The officer answers (his window opens again); the citizen, outside hers, hears the
    # resolution with the officer's note as the template too, its new-lines flattened.
    bot.say(f"proses {code} tim sudah dijadwalkan", wa_id=OFFICER)
    wait_until(lambda: not pending(bot), what="the citizen told (inside her window)")
    age(bot, WA_ID, 25)
    before = len(bot.graph.sent_to(WA_ID))
    note = "Lubang sudah ditambal oleh Dinas PUPR.\nCatatan: mohon hati-hati,\taspal masih baru"
    bot.say(f"selesai {code} {note}", wa_id=OFFICER)
    new_messages(bot, WA_ID, before, "the resolution")
    wait_until(lambda: not pending(bot), what="outbox drained")
    pushed = bot.graph.sent_to(WA_ID)[before:]
    assert pushed and all(m.type == "template" for m in pushed)
    text = parameter(pushed[0])
    assert (
        code in text and "Lubang sudah ditambal oleh Dinas PUPR. Catatan: mohon hati-hati," in text
    )
    assert "\n" not in text and "\t" not in text

    assert bot.graph.rejected == []  # Meta refused nothing
    assert {row.state for row in outbox(bot)} == {"sent"}
    body = health(bot.proc)
    assert body["outside_window_24h"] == {} and body["failed_24h"] == {}


def test_131047_in_a_failed_status_sends_the_message_again_as_the_template_once(
    sqlite_wa_bot: WaBot,
) -> None:
    """Meta accepts a free-form message (200) and reports 131047 later, in the `statuses` of
    a webhook: the message goes again as the template, once, through the outbox."""
    bot = sqlite_wa_bot
    register_officer(bot, "PUPR")
    code = report_pothole(bot)
    before = len(bot.graph.sent_to(WA_ID))
    bot.say(f"proses {code} tim berangkat besok pagi", wa_id=OFFICER)
    [push] = new_messages(bot, WA_ID, before, "the status push")
    assert push.type == "text" and code in push.content["body"]
    wait_until(lambda: not pending(bot), what="push recorded as sent")

    failed = status(push.wamid, "failed", error_code=131047, wa_id=WA_ID)
    assert bot.post(webhook_body(statuses=[failed])) == 200
    [again] = new_messages(bot, WA_ID, before + 1, "the template")
    assert again.content["name"] == "status_laporan"
    assert code in parameter(again) and "tim berangkat besok pagi" in parameter(again)

    # Meta may report it again: nothing more is queued.
    assert bot.post(webhook_body(statuses=[failed])) == 200
    wait_until(lambda: not pending(bot), what="outbox drained")
    assert [m.type for m in bot.graph.sent_to(WA_ID)[before:]] == ["text", "template"]
    rows = outbox(bot)
    [original] = [r for r in rows if r.platform_message_id == push.wamid]
    assert original.delivery_status == "failed" and "131047" in (original.error or "")
    [copy] = [r for r in rows if r.meta.get("as_template")]
    assert copy.meta["template_for"] == original.id and copy.state == "sent"
    assert (copy.kind, copy.identity_id, copy.report_id) == (
        original.kind,
        original.identity_id,
        original.report_id,
    )
    assert health(bot.proc)["outside_window_24h"] == {}  # it reached her as the template

    # A reply has no template: reported 131047, it is lost, and /healthz says so.
    [reply] = bot.say("bantuan")
    wait_until(lambda: not pending(bot), what="reply recorded as sent")
    refused = status(reply.wamid, "failed", error_code=131047, wa_id=WA_ID)
    assert bot.post(webhook_body(statuses=[refused])) == 200
    assert not pending(bot) and len(outbox(bot)) == len(rows) + 1  # nothing queued for it
    assert health(bot.proc)["outside_window_24h"] == {"whatsapp": {"reply": 1}}


def test_healthz_counts_what_the_window_held_back_when_no_template_fits(
    no_status_template_bot: WaBot,
) -> None:
    bot = no_status_template_bot
    register_officer(bot, "PUPR")
    age(bot, OFFICER, 25)
    report_pothole(bot)

    def officer_rows() -> list[OutboxItem]:
        return [r for r in outbox(bot) if r.address == OFFICER and r.kind == "card"]

    wait_until(lambda: [r.state for r in officer_rows()] == ["failed"], what="card given up")
    body = health(bot.proc)
    assert body["ok"] is True
    assert body["outside_window_24h"] == {"whatsapp": {"card": 1}}
    assert body["failed_24h"] == {"whatsapp": 1}


def test_an_officer_registered_by_phone_stays_one_person_when_meta_adds_user_ids(
    wa_bot: WaBot,
) -> None:
    bot = wa_bot
    register_officer(bot, "PUPR")  # before BSUIDs: keyed by the phone number

    # A message with the user id alone (a username account hides the number): it cannot be
    # told from a stranger yet, so it is someone new, no officer.
    before = len(bot.graph.sent_to(OFFICER_BSUID))
    assert bot.post(webhook_body(text_message("antrian"), wa_id=None, user_id=OFFICER_BSUID)) == 200
    refused = new_messages(bot, OFFICER_BSUID, before, "an answer to the user id")
    assert "hanya untuk petugas" in text_of(refused)
    assert len(bot.rows(Person)) == 2

    # Then Meta sends both ids: the two are one person, the officer, under the user id.
    [queue] = bot.send(text_message("antrian"), wa_id=OFFICER, user_id=OFFICER_BSUID)
    assert "hanya" not in text_of([queue])
    [person] = bot.rows(Person)
    [ident] = bot.rows(ChannelIdentity)
    [staff] = bot.rows(Staff)
    assert (ident.external_id, ident.address, ident.person_id) == (
        OFFICER_BSUID,
        OFFICER,
        person.id,
    )
    assert (staff.person_id, staff.opd) == (person.id, "PUPR")
    # and later messages with both ids are that person too
    [again] = bot.send(text_message("antrian"), wa_id=OFFICER, user_id=OFFICER_BSUID)
    assert "hanya" not in text_of([again]) and len(bot.rows(Person)) == 1


def test_an_admin_added_by_phone_number_is_the_person_who_writes(sqlite_wa_bot: WaBot) -> None:
    bot = sqlite_wa_bot
    first = lapor(bot, "admin", "add", "--whatsapp", "+62 813-0000-0099").stdout
    [ident] = bot.rows(ChannelIdentity)
    assert (ident.external_id, ident.address) == (ADMIN_PHONE, ADMIN_PHONE)
    assert ident.last_inbound_at is None  # never wrote: outside the window, templates only

    [stats] = bot.send(text_message("statistik"), wa_id=ADMIN_PHONE, user_id=ADMIN_BSUID)
    assert "hanya" not in text_of([stats])  # an admin's answer
    assert lapor(bot, "admin", "add", "--whatsapp", ADMIN_PHONE).stdout == first  # same person
    [person] = bot.rows(Person)
    [ident] = bot.rows(ChannelIdentity)
    assert (ident.external_id, ident.address, ident.person_id) == (
        ADMIN_BSUID,
        ADMIN_PHONE,
        person.id,
    )
    assert f"whatsapp:{ADMIN_BSUID}" in lapor(bot, "officer", "list").stdout

    local = lapor(bot, "admin", "add", "--whatsapp", "0813 0000 0099", ok=False)
    assert "country code" in local.stderr and "Traceback" not in local.stderr
