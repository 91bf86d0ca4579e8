"""The fake Bot API must look like Telegram to aiogram's real `Bot`."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiohttp import ClientSession, web
from PIL import Image

from tests.conftest import REPO_ROOT
from tests.fakes.procs import BotProcess, ProcessDied, free_port
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeBotAPI


def make_bot(api: FakeBotAPI, token: str = DEFAULT_TOKEN) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))
    return Bot(token, session=session)


def jpeg(width: int = 1600, height: int = 1200) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    b = make_bot(api)
    yield b
    await b.session.close()


async def test_get_me_and_send_message_returns_real_message(api: FakeBotAPI, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.is_bot and me.username == "lapor_warga_test_bot"
    api.push_update(api.text_update(42, "halo", first_name="Siti"))
    first = await bot.send_message(42, "Satu")
    second = await bot.send_message(42, "Dua")
    assert second.message_id > first.message_id
    assert first.chat.id == 42 and first.chat.first_name == "Siti"
    assert first.from_user is not None and first.from_user.id == me.id
    assert [m["text"] for m in api.sent_to(42)] == ["Satu", "Dua"]
    assert api.sent_to(43) == []
    call = api.calls("sendMessage")[0]
    assert call.chat_id == "42" and call.params["text"] == "Satu"


async def test_text_validation(api: FakeBotAPI, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(1, "   ")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(1, "x" * 4097)
    await bot.send_message(1, "x" * 4096)
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_photo(1, BufferedInputFile(jpeg(50, 50), "a.jpg"), caption="c" * 1025)
    assert len(api.sent_to(1)) == 1


async def test_callback_data_over_64_bytes_rejected(api: FakeBotAPI, bot: Bot) -> None:
    def kb(data: str) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Pilih", callback_data=data)]]
        )

    await bot.send_message(7, "ok", reply_markup=kb("é" * 32))  # exactly 64 bytes
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(7, "too long", reply_markup=kb("é" * 32 + "x"))
    assert [m["text"] for m in api.sent_to(7)] == ["ok"]


async def test_send_photo_upload_get_file_and_download(api: FakeBotAPI, bot: Bot) -> None:
    data = jpeg()
    msg = await bot.send_photo(5, BufferedInputFile(data, "foto.jpg"), caption="Jalan rusak")
    assert msg.photo is not None and len(msg.photo) >= 3
    largest = msg.photo[-1]
    assert (largest.width, largest.height) == (1600, 1200)
    assert msg.photo[0].width <= 90 and msg.caption == "Jalan rusak"
    assert api.file_bytes(largest.file_id) == data
    f = await bot.get_file(largest.file_id)
    assert f.file_path
    buf = io.BytesIO()
    await bot.download_file(f.file_path, buf)
    assert buf.getvalue() == data
    # re-sending by file_id reuses the same sizes
    again = await bot.send_photo(6, largest.file_id)
    assert again.photo is not None and again.photo[-1].file_id == largest.file_id
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(6, "no-such-file-id")
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(6, BufferedInputFile(b"not an image", "x.jpg"))
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("nope")


async def test_incoming_photo_update_downloadable(api: FakeBotAPI, bot: Bot) -> None:
    data = jpeg(400, 300)
    api.push_update(api.photo_update(9, data, caption="banjir"))
    [update] = await bot.get_updates()
    assert update.message is not None and update.message.caption == "banjir"
    photo = update.message.photo
    assert photo is not None and photo[-1].width == 400 and photo[0].width == 90
    buf = io.BytesIO()
    await bot.download(photo[-1].file_id, buf)
    assert buf.getvalue() == data


async def test_get_updates_offset_confirmation_and_redelivery(api: FakeBotAPI, bot: Bot) -> None:
    u1 = api.push_update(api.text_update(1, "/start"))
    u2 = api.push_update(api.location_update(1, -0.9, 119.87))
    assert u2["update_id"] == u1["update_id"] + 1
    got = await bot.get_updates()
    assert [u.update_id for u in got] == [u1["update_id"], u2["update_id"]]
    assert got[0].message is not None and got[0].message.text == "/start"
    assert got[0].message.entities is not None
    assert got[0].message.entities[0].type == "bot_command"
    assert got[1].message is not None and got[1].message.location is not None
    # not confirmed -> delivered again
    again = await bot.get_updates()
    assert [u.update_id for u in again] == [u1["update_id"], u2["update_id"]]
    # confirm the first only
    rest = await bot.get_updates(offset=u1["update_id"] + 1)
    assert [u.update_id for u in rest] == [u2["update_id"]]
    assert await bot.get_updates(offset=u2["update_id"] + 1, timeout=0) == []
    assert api.pending_updates() == []
    limited = api.push_updates(api.text_update(2, str(i)) for i in range(5))
    assert len(await bot.get_updates(limit=2)) == 2
    # allowed_updates persists and filters other update types out
    api.push_update(api.callback_update(2, "x"))
    got = await bot.get_updates(allowed_updates=["message"])
    assert all(u.message is not None for u in got) and len(got) == 5
    assert limited[-1]["update_id"] == u2["update_id"] + 5


async def test_long_poll_wakes_when_update_pushed(api: FakeBotAPI, bot: Bot) -> None:
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, lambda: api.push_update(api.text_update(3, "hai")))
    started = loop.time()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await api.wait_for(lambda: api.in_flight("getupdates") == 1, timeout=2)
    assert api.calls("getUpdates") == []  # recorded once answered
    got = await poll
    elapsed = loop.time() - started
    assert len(got) == 1 and 0.15 < elapsed < 2
    started = loop.time()
    assert await bot.get_updates(offset=got[0].update_id + 1, timeout=1) == []
    assert loop.time() - started >= 0.9


async def test_second_get_updates_terminates_first(api: FakeBotAPI, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    second = asyncio.create_task(bot.get_updates(timeout=1))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await first
    assert await second == []


async def test_callback_query_and_answer(api: FakeBotAPI, bot: Bot) -> None:
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Ya", callback_data="cat:jalan")]]
    )
    sent = await bot.send_message(11, "Kategori?", reply_markup=markup)
    api.push_update(api.callback_update(11, "cat:jalan"))
    [upd] = await bot.get_updates()
    query = upd.callback_query
    assert query is not None and query.data == "cat:jalan"
    assert query.message is not None and query.message.message_id == sent.message_id
    assert await bot.answer_callback_query(query.id, text="Oke")
    assert api.callback_answers[query.id]["text"] == "Oke"
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)
    edited = await bot.edit_message_text("Terima kasih", chat_id=11, message_id=sent.message_id)
    assert not isinstance(edited, bool) and edited.text == "Terima kasih"
    assert api.sent_to(11)[0]["text"] == "Terima kasih"
    assert "reply_markup" not in api.sent_to(11)[0]
    with pytest.raises(TelegramBadRequest, match="not modified"):
        await bot.edit_message_text("Terima kasih", chat_id=11, message_id=sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=11, message_id=999)
    assert await bot.delete_message(11, sent.message_id)
    assert api.is_deleted(11, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(11, sent.message_id)


async def test_set_and_get_my_commands_per_language_and_scope(api: FakeBotAPI, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand(command="lapor", description="Buat laporan")])
    await bot.set_my_commands(
        [BotCommand(command="report", description="New report")], language_code="en"
    )
    scope = BotCommandScopeAllPrivateChats()
    await bot.set_my_commands([BotCommand(command="cek", description="Cek")], scope=scope)
    assert [c.command for c in await bot.get_my_commands()] == ["lapor"]
    assert [c.command for c in await bot.get_my_commands(language_code="en")] == ["report"]
    assert [c.command for c in await bot.get_my_commands(scope=scope)] == ["cek"]
    assert await bot.get_my_commands(language_code="fr") == []
    assert api.commands({"type": "all_private_chats"})[0]["command"] == "cek"
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Name", description="x")])


async def test_edit_message_caption_of_a_photo(api: FakeBotAPI, bot: Bot) -> None:
    photo = BufferedInputFile(jpeg(50, 50), "a.jpg")
    sent = await bot.send_photo(12, photo, caption="Status: Baru")
    edited = await bot.edit_message_caption(
        chat_id=12, message_id=sent.message_id, caption="Status: Diproses"
    )
    assert isinstance(edited, Message) and edited.caption == "Status: Diproses"
    assert api.sent_to(12)[0]["caption"] == "Status: Diproses" and api.sent_to(12)[0]["photo"]
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_caption(
            chat_id=12, message_id=sent.message_id, caption="Status: Diproses"
        )
    with pytest.raises(TelegramBadRequest, match="MESSAGE_CAPTION_TOO_LONG"):
        await bot.edit_message_caption(chat_id=12, message_id=sent.message_id, caption="c" * 1025)
    text = await bot.send_message(12, "teks")
    with pytest.raises(TelegramBadRequest, match="no caption"):
        await bot.edit_message_caption(chat_id=12, message_id=text.message_id, caption="x")


async def test_scoped_commands_of_one_chat_are_deleted(api: FakeBotAPI, bot: Bot) -> None:
    scope = BotCommandScopeChat(chat_id=6101)
    await bot.set_my_commands([BotCommand(command="antrian", description="Antrean")], scope=scope)
    assert api.commands({"type": "chat", "chat_id": 6101})[0]["command"] == "antrian"
    await bot.delete_my_commands(scope=scope)
    assert api.commands({"type": "chat", "chat_id": 6101}) == []


async def test_chat_action(api: FakeBotAPI, bot: Bot) -> None:
    assert await bot.send_chat_action(4, "typing")
    assert api.chat_actions == [("4", "typing")]
    with pytest.raises(TelegramBadRequest, match="wrong parameter action"):
        await bot.send_chat_action(4, "dancing")


async def test_errors_map_to_aiogram_exceptions(api: FakeBotAPI, bot: Bot) -> None:
    api.block_chat(66)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(66, "halo")
    assert api.stats.n_403 == 1 and api.sent_to(66) == []
    api.fail_next(2, status=502)
    for _ in range(2):
        with pytest.raises(TelegramServerError, match="Bad Gateway"):
            await bot.send_message(67, "x")
    await bot.send_message(67, "x")
    assert api.stats.n_injected == 2 and len(api.sent_to(67)) == 1
    wrong = make_bot(api, token="999:wrong")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await wrong.get_me()
    finally:
        await wrong.session.close()
    assert [c.status for c in api.calls("getMe")] == [401]


async def test_raw_http_shapes(api: FakeBotAPI) -> None:
    base = f"{api.base_url}/bot{DEFAULT_TOKEN}"
    async with ClientSession() as s:
        async with s.get(f"{base}/noSuchMethod") as r:
            assert r.status == 404
            assert await r.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found: method not found",
            }
        # case-insensitive method names, JSON body and query-string params
        async with s.post(f"{base}/SENDMESSAGE", json={"chat_id": 8, "text": "a"}) as r:
            body = await r.json()
            assert r.status == 200 and body["result"]["text"] == "a"
        async with s.get(f"{base}/sendMessage", params={"chat_id": "8", "text": "b"}) as r:
            assert (await r.json())["result"]["chat"]["id"] == 8
        async with s.post(f"{base}/sendMessage", data={"chat_id": "8", "text": "c"}) as r:
            assert r.status == 200
        markup = json.dumps({"inline_keyboard": [[{"text": "t", "callback_data": "x" * 65}]]})
        async with s.post(
            f"{base}/sendMessage", data={"chat_id": "8", "text": "d", "reply_markup": markup}
        ) as r:
            assert r.status == 400
            assert (await r.json())["description"] == "Bad Request: BUTTON_DATA_INVALID"
    assert [m["text"] for m in api.sent_to(8)] == ["a", "b", "c"]
    assert [c.method for c in api.calls()][:2] == ["noSuchMethod", "sendMessage"]


async def test_webhook_blocks_get_updates_and_delivery(api: FakeBotAPI, bot: Bot) -> None:
    received: list[tuple[dict[str, object], str | None]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        )
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/telegram", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/telegram"
    try:
        assert await bot.set_webhook(url, secret_token="rahasia")
        info = await bot.get_webhook_info()
        assert info.url == url
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()
        status = await api.deliver_webhook(url, api.text_update(5, "hai"), "rahasia")
        assert status == 200
        [(update, secret)] = received
        assert secret == "rahasia" and update["message"]["text"] == "hai"  # type: ignore[index]
        assert isinstance(update["update_id"], int)
        assert await bot.delete_webhook()
        assert await bot.get_updates() == []
    finally:
        await runner.cleanup()


async def test_rate_limits_give_retry_after(bot: Bot) -> None:
    async with FakeBotAPI(rate_global=3, rate_per_chat=1) as api:
        b = make_bot(api)
        try:
            await b.send_message(1, "a")
            with pytest.raises(TelegramRetryAfter) as exc:
                await b.send_message(1, "b")
            assert exc.value.retry_after == 1
            await b.send_message(2, "a")
            await b.send_message(3, "a")
            with pytest.raises(TelegramRetryAfter):
                await b.send_message(4, "a")  # 4th send within 1 s overall
            await b.send_chat_action(1, "typing")  # not a message: not limited
        finally:
            await b.session.close()
        assert api.stats.n_429 == 2 and api.stats.sent_total == 3
        assert api.stats.max_in_window(1) == 1
        assert api.stats.max_in_window() == 3
        assert [c.status for c in api.calls("sendMessage")] == [200, 429, 200, 200, 429]


async def test_paid_broadcast_lane_its_rate_per_chat_limit_and_stars() -> None:
    """`allow_paid_broadcast` (Bot API 7.11): past the free 30/s-style limit, up to the paid
    rate overall, still 1 a second per chat, 0.1 Star per message."""
    async with FakeBotAPI(rate_global=2, rate_per_chat=1, rate_paid=5) as api:
        b = make_bot(api)
        try:
            await b.send_message(1, "free")
            await b.send_message(2, "free")
            with pytest.raises(TelegramRetryAfter):
                await b.send_message(3, "free")  # the free lane is full
            for chat in range(3, 8):
                await b.send_message(chat, "paid", allow_paid_broadcast=True)
            with pytest.raises(TelegramRetryAfter):
                await b.send_message(8, "paid", allow_paid_broadcast=True)  # 6th paid in 1 s
            with pytest.raises(TelegramRetryAfter):
                await b.send_message(3, "again", allow_paid_broadcast=True)  # per chat: 1/s
        finally:
            await b.session.close()
        assert api.stats.sent_total == 7 and api.stats.paid_total == 5
        assert api.stats.stars_spent == 0.5
        assert [c.status for c in api.calls("sendMessage")][-3:] == [200, 429, 429]


async def test_webhook_delivery_round_robin_to_several_processes(api: FakeBotAPI) -> None:
    """Behind a load balancer: updates go in order, one at a time, to each URL in turn; one
    not answered 200 is offered to the next."""
    got: dict[str, list[int]] = {"a": [], "b": []}
    refuse_b = {"left": 1}

    def hook(name: str):  # type: ignore[no-untyped-def]
        async def handle(request: web.Request) -> web.Response:
            assert request.headers.get("X-Telegram-Bot-Api-Secret-Token") == "s3"
            if name == "b" and refuse_b["left"]:
                refuse_b["left"] -= 1
                return web.Response(status=503)
            got[name].append(int((await request.json())["update_id"]))
            return web.Response(text="ok")

        return handle

    runners, urls = [], []
    for name in ("a", "b"):
        app = web.Application()
        app.router.add_post("/telegram", hook(name))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        urls.append(f"http://127.0.0.1:{runner.addresses[0][1]}/telegram")
    try:
        api.deliver_to(urls, secret_token="s3")
        pushed = [api.push_update(api.text_update(7, f"m{i}"))["update_id"] for i in range(6)]
        await api.wait_for(lambda: len(api.delivered) == 6)
        assert sorted(got["a"] + got["b"]) == pushed
        assert got["a"] and got["b"]  # both processes got some
        assert [u for _url, u in api.delivered] == pushed  # in order, each once
        assert api.pending_updates() == []
    finally:
        for runner in runners:
            await runner.cleanup()


async def test_wait_for_and_reset(api: FakeBotAPI, bot: Bot) -> None:
    asyncio.get_running_loop().call_later(
        0.1, lambda: asyncio.ensure_future(bot.send_message(12, "nanti"))
    )
    await api.wait_for(lambda: len(api.sent_to(12)) == 1, timeout=3)
    with pytest.raises(TimeoutError):
        await api.wait_for(lambda: len(api.sent_to(12)) == 2, timeout=0.1)
    api.reset_calls()
    assert api.calls() == [] and api.sent_to(12) == []


async def test_group_message_has_negative_chat(api: FakeBotAPI, bot: Bot) -> None:
    api.push_update(api.text_update(21, "rapat", chat_type="group", chat_title="OPD PUPR"))
    [upd] = await bot.get_updates()
    assert upd.message is not None
    assert upd.message.chat.id < 0 and upd.message.chat.type == "group"
    assert upd.message.chat.title == "OPD PUPR"
    sent = await bot.send_message(upd.message.chat.id, "diterima")
    assert sent.chat.type == "group"


async def test_strict_chats_rejects_unknown_chat() -> None:
    async with FakeBotAPI(strict_chats=True) as api:
        b = make_bot(api)
        try:
            with pytest.raises(TelegramBadRequest, match="chat not found"):
                await b.send_message(77, "x")
            api.push_update(api.text_update(77, "/start"))
            assert (await b.send_message(77, "x")).chat.id == 77
            with pytest.raises(TelegramBadRequest, match="chat not found"):
                await b.send_message("@nobody", "x")
        finally:
            await b.session.close()


def test_thread_mode_sync_helpers() -> None:
    api = FakeBotAPI().start_in_thread()
    try:
        url = f"{api.base_url}/bot{DEFAULT_TOKEN}/sendMessage"
        api.push_update(api.text_update(30, "x"))
        req = urllib.request.Request(
            url,
            data=json.dumps({"chat_id": 30, "text": "dari thread"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert json.load(resp)["result"]["chat"]["first_name"] == "Warga"
        api.wait_for_sync(lambda: len(api.sent_to(30)) == 1, timeout=2)
        with pytest.raises(TimeoutError):
            api.wait_for_sync(lambda: len(api.sent_to(30)) == 2, timeout=0.1)
    finally:
        api.stop()


def test_process_mode_prints_base_url_and_control_routes() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.telegram_api", "--port", "0", "--rate-per-chat", "1"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        req = urllib.request.Request(
            f"{base}/_fake/text",
            data=json.dumps([{"user_id": 1, "text": "a"}]).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=5).close()
        with urllib.request.urlopen(f"{base}/bot{DEFAULT_TOKEN}/getUpdates", timeout=5) as r:
            assert json.load(r)["result"][0]["message"]["text"] == "a"
        with urllib.request.urlopen(f"{base}/_fake/stats", timeout=5) as r:
            assert json.load(r)["calls"] == {"getUpdates": 1}
    finally:
        proc.terminate()
        assert proc.wait(5) == 0
        if proc.stdout is not None:
            proc.stdout.close()


# --------------------------------------------------------------------------- tests/fakes/procs.py
CHILD = """
import http.server, os, signal, sys, time
time.sleep(float(os.environ.get("START_DELAY", "0")))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()
    def log_message(self, *a):
        pass
def bye(*_):
    print("bye", os.environ["MARK"], flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
print("listening", os.environ["MARK"], flush=True)
http.server.HTTPServer((os.environ["HTTP_HOST"], int(os.environ["HTTP_PORT"])), H).serve_forever()
"""


def child(tmp_path: Path, **env: str) -> BotProcess:
    base = {"HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(free_port()), "MARK": "m1", **env}
    return BotProcess(base, cmd=[sys.executable, "-c", CHILD], log_path=tmp_path / "bot.log")


def test_bot_process_start_ready_terminate_kill9_restart(tmp_path: Path) -> None:
    with child(tmp_path, START_DELAY="0.3") as proc:
        proc.wait_ready(10)
        assert proc.is_running()
        assert proc.terminate() == 0
        assert "bye m1" in proc.logs()
        proc.restart()
        proc.wait_ready(10)
        pid = proc.pid
        assert pid is not None
        assert proc.kill9() == -signal.SIGKILL
        assert not proc.is_running()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped: no zombie left behind
        proc.restart().wait_ready(10)
        assert proc.logs().count("listening m1") == 3
        running = proc.pid
    assert running is not None and proc.returncode == 0  # __exit__ terminated it


async def test_bot_process_async_ready_and_early_death(tmp_path: Path) -> None:
    proc = child(tmp_path)
    try:
        proc.start()
        await proc.wait_ready_async(10)
        assert await proc.terminate_async() == 0
    finally:
        proc.cleanup()
    dead = BotProcess(
        {"HTTP_PORT": str(free_port())},
        cmd=[sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"],
        log_path=tmp_path / "dead.log",
    )
    with dead, pytest.raises(ProcessDied, match="exited with 3"):
        dead.wait_ready(10)
    assert "boom" in dead.logs()
