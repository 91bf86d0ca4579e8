"""End to end: the real `lapor run` process against a fake Telegram Bot API on 127.0.0.1."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

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
    out = bot.send_photo(UID, jpeg_with_exif())  # the review card follows the photo
    card = text_of(out)
    assert "Besusu Barat" in card and "Dinas PUPR" in card and "Foto: 1" in card
    assert "ph:more" in buttons(out[-1])
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
    assert len(answered) == 2
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
    """Nominatim keeps the request waiting. While one citizen's typed address is being looked
    up (before the transaction, by the inbox worker), another citizen is answered; only then
    does the geocoder answer, and the first citizen gets the place to confirm."""
    import threading

    from tests.fakes.nominatim import FakeNominatim, place

    towua = place(-0.9150, 119.8800, "Jalan Towua, Tatura, Palu")
    with FakeNominatim(places={"jalan towua nomor 12, kota palu": towua}) as nominatim:
        url = f"sqlite:///{tmp_path / 'e2e.db'}"
        with running_bot(url, tmp_path, GEOCODER_URL=nominatim.url) as bot:
            bot.say(UID, "/lapor")
            bot.press(UID, "cat:jalan_rusak")
            bot.say(UID, "Jalan berlubang besar, bahaya untuk motor")
            nominatim.gate = threading.Event()
            other = UID + 1
            bot.api.push_update(bot.api.text_update(UID, "Jalan Towua nomor 12"))
            wait_until(lambda: nominatim.count("/search") == 1, what="the lookup under way")
            out = bot.say(other, "/start")  # answered while the lookup is still held
            assert "Selamat datang" in text_of(out)
            assert len(bot.api.sent_to(UID)) == 3  # the first citizen is still waiting
            nominatim.gate.set()
            bot.api.wait_for_sync(lambda: len(bot.api.sent_to(UID)) >= 4, 15)
            place_reply = bot.api.sent_to(UID)[-1]
            assert "Jalan Towua" in (place_reply.get("text") or "")
            assert "loc:yes" in buttons(place_reply)
            assert nominatim.count("/search") == 1  # asked once, before the transaction


def _open_transaction_probe(db_url: str, hold: float) -> Any:
    """What the fake geocoder runs while it keeps a request waiting for `hold` seconds:
    fail if the bot holds a database transaction open across the whole call (on SQLite: its
    write lock, seen from outside; on PostgreSQL: a transaction that began before the call
    and is still open after it)."""
    import sqlite3

    import psycopg
    from sqlalchemy.engine import make_url

    if db_url.startswith("sqlite"):
        path = db_url.split("///", 1)[1]

        def sqlite_probe() -> None:
            deadline = time.monotonic() + hold
            while time.monotonic() < deadline:
                conn = sqlite3.connect(path, timeout=0)
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.rollback()
                    return  # the write lock is free during the call
                except sqlite3.OperationalError:
                    time.sleep(0.05)
                finally:
                    conn.close()
            raise AssertionError("the database was locked for the whole geocoder call")

        return sqlite_probe

    dsn = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)

    def pg_probe() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            started = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
            time.sleep(hold)
            open_since = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND xact_start < %s",
                (started,),
            ).fetchone()[0]  # type: ignore[index]
        if open_since:
            raise AssertionError("a transaction stayed open across the geocoder call")

    return pg_probe


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_geocoder_is_never_called_inside_a_transaction(tmp_path: Path, kind: str) -> None:
    """A geocoder that keeps every request waiting, at every step that takes a place: a
    shared point with no report yet, a typed address, a new address typed at the
    confirmation and a point shared there. Each call is made before the update's
    transaction (checked from outside, on the database itself), and its answer is used."""
    from tests.fakes.nominatim import FakeNominatim, place

    towua = place(-0.9150, 119.8800, "Jalan Towua, Tatura, Palu")
    lolu = place(-0.8990, 119.8700, "Jalan Lolu, Palu")
    with (
        FakeNominatim(
            places={"jalan towua nomor 12, kota palu": towua, "jalan lolu 3, kota palu": lolu},
            addresses={
                (-0.889, 119.866): "Jalan Sam Ratulangi, Besusu Barat, Palu",
                (-0.885, 119.862): "Jalan Raja Moili, Besusu Barat, Palu",
            },
        ) as nominatim,
        database_url(kind, tmp_path) as url,
        running_bot(url, tmp_path, GEOCODER_URL=nominatim.url) as bot,
    ):
        nominatim.probe = _open_transaction_probe(url, hold=0.6)
        out = bot.share_location(UID, *BESUSU_BARAT, replies=2)  # no conversation: reverse
        assert "Besusu Barat" in text_of(out)
        bot.say(UID, "/batal")
        bot.say(UID, "/lapor")
        bot.press(UID, "cat:jalan_rusak")
        bot.say(UID, "Jalan berlubang besar, bahaya untuk motor")
        out = bot.say(UID, "Jalan Towua nomor 12")  # report.location: forward
        assert "Jalan Towua" in text_of(out) and "loc:yes" in buttons(out[-1])
        out = bot.say(UID, "Jalan Lolu 3")  # typed again at report.place_confirm
        assert "Jalan Lolu" in text_of(out) and "loc:yes" in buttons(out[-1])
        out = bot.share_location(UID, -0.8852, 119.8621)  # a point at report.place_confirm
        assert "ph:done" in buttons(out[-1])
        bot.press(UID, "ph:done")
        bot.press(UID, "rv:send", replies=2)
        [rep] = reports(bot)
        assert rep.place_text == "Jalan Raja Moili, Besusu Barat, Palu"  # the reverse answer
        assert nominatim.count("/search") == 2 and nominatim.count("/reverse") == 2
        assert nominatim.probe_errors == []
