"""End to end: the real `lapor run` process on WhatsApp, against the fake Graph API.

Signed webhook bodies are POSTed to `http://127.0.0.1:<HTTP_PORT>/whatsapp`; what the bot
sends is read back from the fake Graph API (`POST /{phone_id}/messages`).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlmodel import col, select

from storage.db import Database, utcnow
from storage.models import ChannelIdentity, InboxItem, OutboxItem, Person, Photo, Report, Staff
from tests.dbs import database_url
from tests.e2e import base_env, jpeg_with_exif, wait_until
from tests.fakes.graph_api import (
    PHONE_ID,
    WA_ID,
    FakeGraphAPI,
    SentMessage,
    button_reply,
    image_message,
    list_reply,
    location_message,
    post_webhook,
    status,
    text_message,
    webhook_body,
)
from tests.fakes.procs import REPO, BotProcess, ProcessDied

pytestmark = pytest.mark.e2e

SECRET = "wa-app-secret-e2e"
VERIFY = "wa-verify-e2e"
TOKEN = "wa-graph-token-e2e"
BESUSU_BARAT = (-0.8892, 119.8658)  # centroid of Kel. Besusu Barat, Palu Timur
OFFICER = "6281300000001"
CODE_RE = re.compile(r"PLU-\d{4}-\d{4}")


class WaBot:
    """A running `lapor run` with only the WhatsApp channel, plus the fake Graph API."""

    def __init__(self, graph: FakeGraphAPI, proc: BotProcess, db_url: str, media: Path) -> None:
        self.graph = graph
        self.proc = proc
        self.db_url = db_url
        self.media = media
        self.hook = f"http://127.0.0.1:{proc.env['HTTP_PORT']}/whatsapp"

    def post(self, body: dict[str, Any], secret: str | None = SECRET, forge: bool = False) -> int:
        code, _text = asyncio.run(post_webhook(self.hook, body, secret, forge=forge))
        return code

    def send(
        self, message: dict[str, Any], wa_id: str = WA_ID, replies: int = 1, **kw: Any
    ) -> list[SentMessage]:
        """Deliver one signed message from `wa_id`; wait for `replies` new messages to it."""
        before = len(self.graph.sent_to(wa_id))
        assert self.post(webhook_body(message, wa_id=wa_id, **kw)) == 200
        wait_until(
            lambda: len(self.graph.sent_to(wa_id)) >= before + replies,
            timeout=20,
            what=f"{replies} answer(s) to {message.get('type')}",
        )
        return self.graph.sent_to(wa_id)[before:]

    def say(self, text: str, wa_id: str = WA_ID, replies: int = 1) -> list[SentMessage]:
        return self.send(text_message(text), wa_id, replies)

    def db(self) -> Database:
        return Database(self.db_url)

    def rows(self, model: Any) -> list[Any]:
        with self.db().session() as s:
            return list(s.exec(select(model)))


def wa_env(graph: FakeGraphAPI, db_url: str, tmp: Path, **extra: str) -> dict[str, str]:
    whatsapp = {
        "WHATSAPP_TOKEN": graph.token,
        "WHATSAPP_PHONE_ID": PHONE_ID,
        "WHATSAPP_APP_SECRET": SECRET,
        "WHATSAPP_VERIFY_TOKEN": VERIFY,
        "WHATSAPP_API_BASE": graph.base_url,
        "TELEGRAM_BOT_TOKEN": "",  # only WhatsApp, whatever the environment says
    }
    return base_env(db_url, tmp, **{**whatsapp, **extra})


@contextmanager
def running_wa_bot(db_url: str, tmp: Path, **extra: str) -> Iterator[WaBot]:
    graph = FakeGraphAPI(token=TOKEN).start_in_thread()
    proc = BotProcess(wa_env(graph, db_url, tmp, **extra), log_path=tmp / "bot.log")
    try:
        proc.start()
        proc.wait_ready(timeout=60)
        yield WaBot(graph, proc, db_url, tmp / "media")
    except BaseException:
        print(proc.logs()[-6000:])
        raise
    finally:
        proc.cleanup()
        graph.stop_thread()


@pytest.fixture(params=["sqlite", "postgres"])
def wa_bot(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WaBot]:
    with database_url(request.param, tmp_path) as url, running_wa_bot(url, tmp_path) as b:
        yield b


@pytest.fixture
def sqlite_wa_bot(tmp_path: Path) -> Iterator[WaBot]:
    with running_wa_bot(f"sqlite:///{tmp_path / 'wa.db'}", tmp_path) as b:
        yield b


# ------------------------------------------------------------------ reading what was sent


def interactive(msg: SentMessage) -> dict[str, Any]:
    assert msg.type == "interactive", f"expected an interactive message, got {msg.type}"
    return msg.content


def rows(msg: SentMessage) -> list[dict[str, Any]]:
    inter = interactive(msg)
    assert inter["type"] == "list"
    return [r for s in inter["action"]["sections"] for r in s["rows"]]


def button_ids(msg: SentMessage) -> list[str]:
    inter = interactive(msg)
    assert inter["type"] == "button"
    return [b["reply"]["id"] for b in inter["action"]["buttons"]]


def text_of(msgs: list[SentMessage]) -> str:
    parts = []
    for m in msgs:
        c = m.content
        parts.append(c.get("body") if m.type == "text" else (c.get("body") or {}).get("text"))
        parts.append(c.get("caption"))
    return "\n".join(p for p in parts if isinstance(p, str))


def outbox_row(bot: WaBot, wamid: str) -> OutboxItem:
    row = find_outbox_row(bot, wamid)
    assert row is not None, f"no outbox row for {wamid}"
    return row


def find_outbox_row(bot: WaBot, wamid: str) -> OutboxItem | None:
    """The row sent as `wamid`; None until the sender has recorded the send."""
    with bot.db().session() as s:
        return s.exec(select(OutboxItem).where(OutboxItem.platform_message_id == wamid)).first()


def row_state(bot: WaBot, wamid: str) -> tuple[str | None, str | None]:
    """(state, delivery status) of the row sent as `wamid`, (None, None) before it is recorded
    (a condition to wait on: it never raises)."""
    row = find_outbox_row(bot, wamid)
    return (row.state, row.delivery_status) if row else (None, None)


# ------------------------------------------------------------------ the citizen's report


def file_report(bot: WaBot) -> str:
    """/lapor typed as a word, category from page 2 of the list, location, photo; the code."""
    [menu] = bot.say("lapor")
    first = rows(menu)
    assert len(first) == 10 and first[-1]["title"] == "Lainnya"  # 9 categories + "More"
    assert interactive(menu)["action"]["button"] == "Pilih"
    assert all(r["id"].startswith("cat:") for r in first[:-1])
    [page2] = bot.send(list_reply(first[-1]["id"], "Lainnya"))
    second = rows(page2)
    assert len(second) == 6 and all(r["id"].startswith("cat:") for r in second)  # 15 in all
    assert not {r["id"] for r in second} & {r["id"] for r in first}
    picked = second[2]["id"]

    [ask] = bot.send(list_reply(picked, second[2]["title"]))
    assert ask.type == "text" and "Ceritakan" in ask.content["body"]
    [hint] = bot.send({"type": "sticker", "sticker": {"id": "st1", "mime_type": "image/webp"}})
    assert hint.content["body"] == "Mohon ceritakan masalahnya dengan kata-kata."
    [where] = bot.say("Pohon tumbang menutup separuh jalan di depan kantor lurah")
    assert interactive(where)["type"] == "location_request_message"
    assert interactive(where)["action"] == {"name": "send_location"}

    [photo_ask] = bot.send(location_message(*BESUSU_BARAT))
    assert button_ids(photo_ask) == ["ph:done"]
    media_id = bot.graph.add_media(jpeg_with_exif(), "image/jpeg")
    [card] = bot.send(image_message(media_id, caption="dari arah utara"))  # review follows
    assert "Besusu Barat" in interactive(card)["body"]["text"]
    assert {"rv:send", "ph:more"} <= {r["id"] for r in rows(card)}  # 6 choices → a list
    out = bot.send(list_reply("rv:send", "Kirim"))
    code = CODE_RE.search(text_of(out))
    assert code, text_of(out)

    [rep] = bot.rows(Report)
    assert rep.code == code.group(0)
    assert rep.category == picked.removeprefix("cat:") and rep.kode_kel == "72.71.01.1004"
    [photo] = bot.rows(Photo)
    stored = bot.media / photo.path
    assert stored.exists() and photo.sha256 in stored.name
    with Image.open(stored) as img:
        assert not img.getexif()  # EXIF stripped
    assert bot.graph.counters["downloads"] == 1
    return rep.code


def test_citizen_report_and_status_push_inside_and_outside_window(wa_bot: WaBot) -> None:
    bot = wa_bot
    code = file_report(bot)
    # No contacts[].user_id in these payloads: the person is keyed by wa_id, phone stored.
    [ident] = bot.rows(ChannelIdentity)
    assert (ident.external_id, ident.address) == (WA_ID, WA_ID)
    [person] = bot.rows(Person)
    assert person.phone == WA_ID

    # "status CODE" typed without the slash.
    out = bot.say(f"status {code}")
    assert code in text_of(out) and "Status: Baru" in text_of(out)

    # An officer on WhatsApp joins with an invite from the CLI and works the report.
    [rep] = bot.rows(Report)
    invite = subprocess.run(
        [sys.executable, "-m", "bot.cli", "invite", "--opd", rep.opd],
        cwd=REPO,
        env={**os.environ, **bot.proc.env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    bot.say(f"daftar {invite}", wa_id=OFFICER)
    [staff] = bot.rows(Staff)
    assert staff.opd == rep.opd

    # Inside the 24 h window: the status change goes to the citizen as free-form text.
    before = len(bot.graph.sent_to(WA_ID))
    bot.say(f"proses {code} tim sudah berangkat", wa_id=OFFICER)
    wait_until(lambda: len(bot.graph.sent_to(WA_ID)) > before, what="status push (window)")
    push = bot.graph.sent_to(WA_ID)[before]
    assert push.type == "text" and code in push.content["body"]

    # Outside the window.  The only way to age the citizen's last message in a real process
    # is to move last_inbound_at back in the database (a direct write, on purpose).
    with bot.db().session() as s:
        row = s.exec(select(ChannelIdentity).where(ChannelIdentity.external_id == WA_ID)).one()
        row.last_inbound_at = utcnow() - timedelta(hours=25)
        s.add(row)
    before = len(bot.graph.sent_to(WA_ID))
    bot.say(f"selesai {code} pohon sudah dipotong dan diangkut", wa_id=OFFICER)
    wait_until(lambda: len(bot.graph.sent_to(WA_ID)) > before, what="status push (template)")
    wait_until(lambda: not pending(bot), what="outbox drained")
    later = bot.graph.sent_to(WA_ID)[before:]
    templates = [m for m in later if m.type == "template"]
    assert templates and all(m.type == "template" for m in later)  # nothing free-form
    tpl = templates[0].content
    assert tpl["name"] == "status_laporan" and tpl["language"] == {"code": "id"}
    assert code in tpl["components"][0]["parameters"][0]["text"]


def pending(bot: WaBot) -> bool:
    with bot.db().session() as s:
        q = select(OutboxItem).where(col(OutboxItem.state).in_(("pending", "sending")))
        return s.exec(q).first() is not None


# ------------------------------------------------------------------ webhook security, replays


def test_forged_unsigned_and_replayed_webhooks(sqlite_wa_bot: WaBot) -> None:
    bot = sqlite_wa_bot
    assert bot.post(webhook_body(text_message("bantuan")), secret=SECRET, forge=True) == 403
    assert bot.post(webhook_body(text_message("bantuan")), secret=None) == 401
    assert bot.rows(InboxItem) == [] and bot.graph.sent == []

    # The same wamid delivered twice (Meta retries for days): handled once.
    body = webhook_body(text_message("bantuan", id="wamid.RETRIED0001"))
    assert bot.post(body) == 200
    assert bot.post(body) == 200
    bot.say("laporanku")  # answered after the retry, so the retry was seen by now
    texts = [text_of([m]) for m in bot.graph.sent_to(WA_ID)]
    # the help, once (WhatsApp: commands are typed words, named without the slash)
    assert len([t for t in texts if "\nlapor – " in t and "\nbahasa – " in t]) == 1
    assert len([i for i in bot.rows(InboxItem) if i.dedupe_key == "wamid.RETRIED0001"]) == 1


def test_user_id_keys_the_person_and_statuses_are_recorded(sqlite_wa_bot: WaBot) -> None:
    bot = sqlite_wa_bot
    bsuid = "ID.9988776655443322110"
    phone = "6281299990000"
    [hello] = bot.send(text_message("halo"), wa_id=phone, user_id=bsuid)
    [ident] = bot.rows(ChannelIdentity)
    assert (ident.external_id, ident.address) == (bsuid, phone)

    # Delivery receipts land on the outbox row of the message they are about.
    wait_until(lambda: row_state(bot, hello.wamid)[0] == "sent", what="row marked sent")
    for state in ("sent", "delivered", "read"):
        assert bot.post(webhook_body(statuses=[status(hello.wamid, state, wa_id=phone)])) == 200
        wait_until(lambda s=state: row_state(bot, hello.wamid)[1] == s, what=state)
    [second] = bot.send(text_message("bantuan"), wa_id=phone, user_id=bsuid)
    wait_until(lambda: row_state(bot, second.wamid)[0] == "sent", what="row marked sent")
    failed = status(second.wamid, "failed", error_code=131026, wa_id=phone)
    assert bot.post(webhook_body(statuses=[failed])) == 200
    wait_until(lambda: row_state(bot, second.wamid)[1] == "failed", what="failed")
    assert "131026" in (outbox_row(bot, second.wamid).error or "")
    # A forged receipt changes nothing.
    assert bot.post(webhook_body(statuses=[status(hello.wamid, "failed")]), forge=True) == 403
    assert outbox_row(bot, hello.wamid).delivery_status == "read"
    assert len(bot.rows(ChannelIdentity)) == 1  # receipts are not people


def test_list_paging_speaks_the_persons_language(sqlite_wa_bot: WaBot) -> None:
    bot = sqlite_wa_bot
    [langs] = bot.say("bahasa")
    assert button_ids(langs) == ["lang:id", "lang:en"]
    bot.send(button_reply("lang:en", "English"))
    [menu] = bot.say("lapor")
    assert rows(menu)[-1]["title"] == "More" and interactive(menu)["action"]["button"] == "Choose"
    [page2] = bot.send(list_reply(rows(menu)[-1]["id"], "More"))
    assert interactive(page2)["action"]["button"] == "Choose"  # the page row's meta["lang"]
    assert len(rows(page2)) == 6


def test_without_app_secret_the_channel_refuses_to_start(tmp_path: Path) -> None:
    graph = FakeGraphAPI(token=TOKEN)  # never contacted: the process stops first
    graph.port = 9  # discard port, unused
    env = wa_env(graph, f"sqlite:///{tmp_path / 'x.db'}", tmp_path, WHATSAPP_APP_SECRET="")
    proc = BotProcess(env, log_path=tmp_path / "bot.log")
    with proc, pytest.raises(ProcessDied):
        proc.wait_ready(timeout=60)
    assert proc.returncode not in (0, None)
    lines = [line for line in proc.logs().splitlines() if "WHATSAPP_APP_SECRET" in line]
    assert lines == ["lapor: setting WHATSAPP_APP_SECRET: required for the WhatsApp channel"]
