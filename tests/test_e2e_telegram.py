"""End to end: the real `lapor run` process against a fake Telegram Bot API on 127.0.0.1."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from PIL import Image
from sqlmodel import select

from storage.models import ChannelIdentity, Photo, Report
from tests.dbs import database_url
from tests.e2e import bot_env, buttons, jpeg_with_exif, running_bot, text_of, wait_until
from tests.fakes.procs import BotProcess, free_port
from tests.fakes.telegram_api import FakeBotAPI

pytestmark = pytest.mark.e2e

BESUSU_BARAT = (-0.8892, 119.8658)  # centroid of Kel. Besusu Barat, Palu Timur
JAKARTA = (-6.2, 106.8)
UID = 5001


def reports(bot) -> list[Report]:  # type: ignore[no-untyped-def]
    with bot.db().session() as s:
        return list(s.exec(select(Report)))


@pytest.fixture(params=["sqlite", "postgres"])
def bot(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    with database_url(request.param, tmp_path) as url, running_bot(url, tmp_path) as b:
        yield b


@pytest.fixture
def sqlite_bot(tmp_path: Path):  # type: ignore[no-untyped-def]
    with running_bot(f"sqlite:///{tmp_path / 'e2e.db'}", tmp_path) as b:
        yield b


def test_full_report_with_gps_and_photo(bot) -> None:  # type: ignore[no-untyped-def]
    out = bot.say(UID, "/start")
    assert "Selamat datang di Lapor Warga Kota Palu" in text_of(out)
    out = bot.say(UID, "/lapor")
    assert "cat:jalan_rusak" in buttons(out[-1])
    bot.press(UID, "cat:jalan_rusak")
    out = bot.say(UID, "Jalan berlubang besar di depan SD Inpres, bahaya untuk motor")
    last_call = bot.api.calls("sendMessage")[-1].params
    markup = last_call["reply_markup"]
    markup = json.loads(markup) if isinstance(markup, str) else markup
    assert markup["keyboard"][0][0]["request_location"] is True
    out = bot.share_location(UID, *BESUSU_BARAT)
    assert "ph:done" in buttons(out[-1])
    out = bot.send_photo(UID, jpeg_with_exif())
    out = bot.press(UID, "ph:done")
    card = text_of(out)
    assert "Besusu Barat" in card and "Dinas PUPR" in card and "Foto: 1" in card
    out = bot.press(UID, "rv:send")
    code = re.search(r"PLU-\d{4}-\d{4}", text_of(out))
    assert code
    [rep] = reports(bot)
    assert rep.code == code.group(0) and rep.opd == "PUPR" and rep.kode_kel == "72.71.01.1004"
    # The photo was downloaded through getFile, stripped of EXIF and stored by hash.
    with bot.db().session() as s:
        [photo] = list(s.exec(select(Photo)))
    stored = bot.media / photo.path
    assert stored.exists() and photo.sha256 in stored.name
    with Image.open(stored) as img:
        assert not img.getexif()
    # Every callback was answered.
    answered = {c.params.get("callback_query_id") for c in bot.api.calls("answerCallbackQuery")}
    assert len(answered) == 3
    # The command menu was registered in both languages.
    assert bot.api.commands() and bot.api.commands(language_code="en")


def test_typed_kelurahan_and_outside_city(sqlite_bot) -> None:  # type: ignore[no-untyped-def]
    bot = sqlite_bot
    bot.say(UID, "/lapor")
    bot.press(UID, "cat:sampah")
    bot.say(UID, "Sampah menumpuk di pinggir jalan tiga hari")
    out = bot.share_location(UID, *JAKARTA)
    assert "di luar Kota Palu" in text_of(out)
    out = bot.say(UID, "kel. besusu brt")
    assert "Besusu Barat" in text_of(out) and "loc:yes" in buttons(out[-1])
    bot.press(UID, "loc:yes")
    bot.press(UID, "ph:done")
    bot.press(UID, "rv:send")
    [rep] = reports(bot)
    assert rep.location_source == "typed" and rep.opd == "DLH"


def test_restart_mid_conversation_keeps_the_draft(sqlite_bot) -> None:  # type: ignore[no-untyped-def]
    bot = sqlite_bot
    bot.say(UID, "/lapor")
    bot.press(UID, "cat:lampu_jalan")
    bot.say(UID, "Lampu jalan mati sudah seminggu, gelap sekali")
    assert bot.proc.terminate() == 0  # clean SIGTERM shutdown
    bot.proc.start()
    bot.proc.wait_ready(timeout=60)
    out = bot.share_location(UID, *BESUSU_BARAT)
    assert "ph:done" in buttons(out[-1])
    bot.press(UID, "ph:done")
    bot.press(UID, "rv:send")
    [rep] = reports(bot)
    assert rep.category == "lampu_jalan" and rep.description.startswith("Lampu jalan mati")


def test_kill9_right_after_confirmation(bot) -> None:  # type: ignore[no-untyped-def]
    bot.say(UID, "/lapor")
    bot.press(UID, "cat:sampah")
    bot.say(UID, "Sampah menumpuk di pinggir jalan tiga hari")
    bot.share_location(UID, *BESUSU_BARAT)
    bot.press(UID, "ph:done")
    out = bot.press(UID, "rv:send")
    assert "Nomor tiket" in text_of(out)
    bot.proc.kill9()
    bot.proc.start()
    bot.proc.wait_ready(timeout=60)
    # Telegram may redeliver what was not confirmed: push the same button again too.
    bot.press(UID, "rv:send")
    assert len(reports(bot)) == 1


def test_kill9_before_the_update_is_handled(sqlite_bot) -> None:  # type: ignore[no-untyped-def]
    bot = sqlite_bot
    bot.say(UID, "/lapor")
    bot.press(UID, "cat:sampah")
    bot.say(UID, "Sampah menumpuk di pinggir jalan tiga hari")
    bot.share_location(UID, *BESUSU_BARAT)
    bot.press(UID, "ph:done")
    before = len(bot.api.sent_to(UID))
    bot.proc.kill9()
    bot.api.push_update(bot.api.callback_update(UID, "rv:send"))  # delivered while down
    bot.proc.start()
    bot.proc.wait_ready(timeout=60)
    # The review card may be sent again (it was in flight at the kill); wait for the ticket.
    bot.api.wait_for_sync(lambda: "Nomor tiket" in text_of(bot.api.sent_to(UID)[before:]), 30)
    wait_until(lambda: len(reports(bot)) == 1, what="the report")
    assert len(reports(bot)) == 1


def test_duplicate_update_delivery_is_handled_once(sqlite_bot) -> None:  # type: ignore[no-untyped-def]
    bot = sqlite_bot
    bot.say(UID, "/lapor")
    update = bot.api.push_update(bot.api.text_update(UID, "/bantuan"))
    bot.api.wait_for_sync(lambda: "Yang bisa saya bantu" in text_of(bot.api.sent_to(UID)), 15)
    bot.api.push_update(dict(update))  # the same update_id again
    bot.say(UID, "/laporanku")  # a later update is answered, so the replay was seen
    helps = [m for m in bot.api.sent_to(UID) if "Yang bisa saya bantu" in (m.get("text") or "")]
    assert len(helps) == 1


def test_blocked_user_is_marked_inactive(sqlite_bot) -> None:  # type: ignore[no-untyped-def]
    bot = sqlite_bot
    bot.say(UID, "/start")
    bot.api.block_chat(UID)
    bot.api.push_update(bot.api.text_update(UID, "/bantuan"))

    def inactive() -> bool:
        with bot.db().session() as s:
            ident = s.exec(select(ChannelIdentity)).first()
            return ident is not None and ident.active is False

    wait_until(inactive, what="identity marked inactive")


def test_server_errors_are_retried(sqlite_bot) -> None:  # type: ignore[no-untyped-def]
    bot = sqlite_bot
    bot.api.fail_next(2, status=502)
    out = bot.say(UID, "/bantuan", timeout=30)
    assert "Yang bisa saya bantu" in text_of(out)


def test_webhook_checks_the_secret(tmp_path: Path) -> None:
    api = FakeBotAPI().start_in_thread()
    try:
        url = f"sqlite:///{tmp_path / 'wh.db'}"
        with running_bot(
            url,
            tmp_path,
            api=api,
            TELEGRAM_WEBHOOK_URL="https://bot.example/telegram",
            TELEGRAM_WEBHOOK_SECRET="s3cret-token",
        ) as bot:
            port = bot.proc.env["HTTP_PORT"]
            hook = f"http://127.0.0.1:{port}/telegram"
            wait_until(lambda: bool(api.calls("setWebhook")), what="setWebhook")
            assert api.calls("setWebhook")[0].params.get("secret_token") == "s3cret-token"
            bad = api.run_coro(api.deliver_webhook(hook, api.text_update(UID, "/start"), "wrong"))
            assert bad == 401
            none = api.run_coro(api.deliver_webhook(hook, api.text_update(UID, "/start")))
            assert none == 401
            upd = api.text_update(UID, "/start")
            ok = api.run_coro(api.deliver_webhook(hook, upd, "s3cret-token"))
            assert ok == 200
            api.wait_for_sync(lambda: len(api.sent_to(UID)) == 1, 15)
            garbage = api.run_coro(_post_raw(hook, b"{not json", "s3cret-token"))
            assert garbage == 400
            assert bot.proc.is_running()
            assert len(api.sent_to(UID)) == 1  # only the signed update was handled
    finally:
        api.stop()


def test_telegram_down_at_start_is_retried_while_the_rest_runs(tmp_path: Path) -> None:
    api = FakeBotAPI(port=free_port())  # not listening yet: connections are refused
    env = bot_env(api, f"sqlite:///{tmp_path / 'down.db'}", tmp_path, DEMO_ENABLED="true")
    proc = BotProcess(env, log_path=tmp_path / "bot.log")
    with proc:
        proc.wait_ready(30)  # the HTTP server, the demo and the workers run without Telegram
        retries = "telegram: cannot reach the Bot API"
        wait_until(lambda: proc.logs().count(retries) >= 2, 20, "two failed attempts")
        with urllib.request.urlopen(proc.health_url, timeout=5) as resp:
            health = json.loads(resp.read())
        assert health["channels"] == {"telegram": "down", "web": "up"}
        api.start_in_thread()  # Telegram is back
        try:
            api.push_update(api.text_update(UID, "/bantuan"))
            api.wait_for_sync(lambda: len(api.sent_to(UID)) == 1, 40)
            assert "Yang bisa saya bantu" in text_of(api.sent_to(UID))
            with urllib.request.urlopen(proc.health_url, timeout=5) as resp:
                assert json.loads(resp.read())["channels"]["telegram"] == "up"
            assert proc.is_running()
            logs = proc.logs()
        finally:
            api.stop()
    assert "Traceback" not in logs
    attempts = [line for line in logs.splitlines() if retries in line]
    assert attempts and all(" WARNING " in line and "retry in" in line for line in attempts)


async def _post_raw(url: str, body: bytes, secret: str) -> int:
    async with (
        aiohttp.ClientSession() as s,
        s.post(url, data=body, headers={"X-Telegram-Bot-Api-Secret-Token": secret}) as r,
    ):
        return r.status


def test_a_slow_geocoder_holds_only_the_citizen_who_typed_a_place(tmp_path: Path) -> None:
    """Nominatim answers after 2 s. While one citizen's typed address is being looked up (before
    the transaction, by the inbox worker), another citizen is answered at once; then the first
    gets the place to confirm, from the geocoder's cache inside the transaction."""
    from tests.fakes.nominatim import FakeNominatim, place

    towua = place(-0.9150, 119.8800, "Jalan Towua, Tatura, Palu")
    with FakeNominatim(places={"jalan towua nomor 12, kota palu": towua}) as nominatim:
        url = f"sqlite:///{tmp_path / 'e2e.db'}"
        with running_bot(url, tmp_path, GEOCODER_URL=nominatim.url) as bot:
            bot.say(UID, "/lapor")
            bot.press(UID, "cat:jalan_rusak")
            bot.say(UID, "Jalan berlubang besar, bahaya untuk motor")
            nominatim.delay = 2.0
            other = UID + 1
            bot.api.push_update(bot.api.text_update(UID, "Jalan Towua nomor 12"))
            time.sleep(0.3)  # the lookup is under way when the other citizen writes
            started = time.monotonic()
            out = bot.say(other, "/start")
            other_waited = time.monotonic() - started
            assert "Selamat datang" in text_of(out)
            bot.api.wait_for_sync(lambda: len(bot.api.sent_to(UID)) >= 4, 15)
            place_reply = bot.api.sent_to(UID)[-1]
            assert "Jalan Towua" in (place_reply.get("text") or "")
            assert "loc:yes" in buttons(place_reply)
            assert other_waited < 1.2, other_waited  # the lookup still has 1.7 s to go
            assert nominatim.count("/search") == 1  # asked once, before the transaction
