"""Telegram adapter pieces: keyboards, aiogram's response classes, the JSON session."""

from __future__ import annotations

import asyncio
import gc
import io

import pytest
from aiogram import methods as tg
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import SendMessage
from aiogram.methods.base import Response
from aiogram.types import InlineKeyboardMarkup, ReplyKeyboardMarkup, ReplyKeyboardRemove
from PIL import Image

from bot.channels.telegram import CALLBACK_MAX_BYTES, keyboard_for, pinned_response_types
from handlers.events import Choice, Reply


def test_pinned_response_classes_survive_garbage_collection() -> None:
    """Without a strong reference pydantic rebuilds Response[Message] after each collection
    (a few ms per send); with the adapter's references it hands back the same class."""
    pinned = pinned_response_types()
    gc.collect()
    assert Response[SendMessage.__returning__] in pinned  # type: ignore[name-defined]
    assert any(Response[SendMessage.__returning__] is p for p in pinned)  # type: ignore[name-defined]


def test_keyboards_follow_the_reply() -> None:
    """Keyboards are plain Bot API JSON; aiogram's own models accept each one as it is."""
    loc = keyboard_for(Reply(text="x", ask_location=True, location_label="Kirim lokasi"))
    assert loc is not None
    parsed_loc = ReplyKeyboardMarkup.model_validate(loc)
    assert parsed_loc.keyboard[0][0].request_location is True
    assert parsed_loc.keyboard[0][0].text == "Kirim lokasi"
    long_id = "rv:" + "é" * 60  # 123 bytes of UTF-8
    markup = keyboard_for(Reply(text="x", choices=(Choice("a", "A"), Choice(long_id, "B"))))
    assert markup is not None
    parsed = InlineKeyboardMarkup.model_validate(markup)
    data = [b.callback_data or "" for row in parsed.inline_keyboard for b in row]
    assert data[0] == "a"
    assert len(data[1].encode()) <= CALLBACK_MAX_BYTES and data[1].startswith("rv:é")
    four = keyboard_for(Reply(text="x", choices=tuple(Choice(f"c{i}", f"C{i}") for i in range(4))))
    assert four is not None and [len(r) for r in four["inline_keyboard"]] == [2, 2]  # two up
    removed = keyboard_for(Reply(text="x", remove_keyboard=True))
    assert ReplyKeyboardRemove.model_validate(removed).remove_keyboard is True
    assert keyboard_for(Reply(text="x")) is None


async def test_json_session_sends_json_and_keeps_raw_updates() -> None:
    """JsonSession against the fake Bot API: buttons arrive intact in a JSON body, errors
    still map to aiogram's exceptions, uploads still work, getUpdates comes back raw."""
    from aiogram import Bot
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.exceptions import TelegramForbiddenError
    from aiogram.methods import GetUpdates
    from aiogram.types import BufferedInputFile

    from bot.channels.telegram import JsonSession
    from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeBotAPI

    async with FakeBotAPI() as api:
        session = JsonSession(api=TelegramAPIServer.from_base(api.base_url))
        bot = Bot(DEFAULT_TOKEN, session=session)
        try:
            markup = keyboard_for(Reply(text="x", choices=(Choice("cat:banjir", "🌊 Banjir"),)))
            sent = await bot.send_message(chat_id=42, text="Pilih kategori", reply_markup=markup)
            assert sent.message_id > 0 and sent.text == "Pilih kategori"
            stored = api.sent_to(42)[-1]
            button = stored["reply_markup"]["inline_keyboard"][0][0]
            assert button == {"text": "🌊 Banjir", "callback_data": "cat:banjir"}
            assert api.calls("sendMessage")[-1].params["chat_id"] in (42, "42")

            api.block_chat(43)
            with pytest.raises(TelegramForbiddenError):
                await bot.send_message(chat_id=43, text="x")

            buf = io.BytesIO()
            Image.new("RGB", (64, 48), (10, 120, 200)).save(buf, "JPEG")
            photo = BufferedInputFile(buf.getvalue(), filename="a.jpg")
            with_photo = await bot.send_photo(chat_id=42, photo=photo, caption="Bukti")
            assert with_photo.photo and with_photo.caption == "Bukti"  # uploads stay multipart

            pushed = api.push_update(api.text_update(7, "halo"))
            raw = await session.post_json(bot, GetUpdates, {"timeout": 0})
            assert raw == [pushed]  # as Telegram sent it: the inbox stores exactly this
        finally:
            await session.close()


async def test_updates_that_could_not_be_stored_are_not_confirmed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The database fails while the poller stores a batch: the poller keeps running, does not
    move its offset past the batch, and stores it when Telegram gives it again."""
    from bot.channels.telegram import TelegramChannel
    from bot.config import Settings
    from bot.i18n import I18n
    from bot.media import MediaStore
    from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeBotAPI

    class FlakyInbox:
        def __init__(self) -> None:
            self.calls = 0
            self.stored: list[str] = []

        async def accept_many(self, channel: str, items: list) -> int:  # type: ignore[type-arg]
            self.calls += 1
            if self.calls == 1:
                raise OSError("database went away")
            self.stored += [key for key, _payload, _sender in items]
            return len(items)

    async with FakeBotAPI() as api:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            telegram_bot_token=DEFAULT_TOKEN,
            telegram_api_base=api.base_url,
            telegram_poll_timeout=1,
        )
        channel = TelegramChannel(settings, MediaStore(tmp_path, 1_000_000), I18n("id"), set())
        sink = FlakyInbox()
        pushed = api.push_update(api.text_update(7, "halo"))
        await channel.start(sink)
        try:
            for _ in range(300):
                if sink.stored:
                    break
                await asyncio.sleep(0.02)
        finally:
            await channel.stop()
        assert sink.calls >= 2
        assert sink.stored == [str(pushed["update_id"])]


async def test_transport_maps_every_answer_of_the_json_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """sendMessage and answerCallbackQuery skip aiogram's models on success; each Bot API
    answer must still become the right SendResult (sent with its id, 429, 403, 5xx, 400)."""
    from aiogram import Bot
    from aiogram.client.telegram import TelegramAPIServer

    from bot.channels.base import OutboundMessage, RateLimits
    from bot.channels.telegram import JsonSession, TelegramTransport
    from bot.media import MediaStore
    from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeBotAPI

    async with FakeBotAPI(rate_per_chat=1) as api:
        session = JsonSession(api=TelegramAPIServer.from_base(api.base_url))
        bot = Bot(DEFAULT_TOKEN, session=session)
        transport = TelegramTransport(bot, MediaStore(tmp_path, 1_000_000), RateLimits(0, 0))

        def msg(chat: int, text: str, **kw) -> OutboundMessage:  # type: ignore[no-untyped-def]
            return OutboundMessage(
                outbox_id=1,
                channel="telegram",
                address=str(chat),
                reply=Reply(text=text, **kw),
                kind="reply",
                identity_id=None,
                meta={},
            )

        try:
            ok = await transport.send(msg(42, "Pilih", choices=(Choice("cat:banjir", "Banjir"),)))
            assert ok.status == "sent"
            stored = api.sent_to(42)[-1]
            assert ok.message_id == str(stored["message_id"])
            assert stored["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "cat:banjir"

            limited = await transport.send(msg(42, "again at once"))  # 1 msg/s per chat
            assert limited.status == "retry" and limited.pause_channel
            assert limited.retry_after is not None and limited.retry_after >= 1

            api.block_chat(43)
            blocked = await transport.send(msg(43, "x"))
            assert blocked.status == "blocked" and (blocked.error or "").startswith("403")

            api.fail_next(1, status=502)
            assert (await transport.send(msg(44, "x"))).status == "retry"
            api.fail_next(1, status=400, description="Bad Request: message text is empty")
            bad = await transport.send(msg(45, "x"))
            assert bad.status == "failed" and "text is empty" in (bad.error or "")

            pushed = api.push_update(api.callback_update(7, "cat:banjir", message_id=0))
            qid = pushed["callback_query"]["id"]
            answered = await transport.call(tg.AnswerCallbackQuery, {"callback_query_id": qid})
            assert answered is True
            with pytest.raises(TelegramBadRequest, match="query is too old"):
                await transport.call(tg.AnswerCallbackQuery, {"callback_query_id": "forged"})
        finally:
            await session.close()


def test_the_poller_finds_the_sender_as_aiogram_would() -> None:
    """Updates are stored raw; their lane (sender key) read from JSON must match the one
    read from aiogram's parsed Update, for every kind the bot receives."""
    from aiogram.types import Update

    from bot.channels.telegram import _raw_sender_key, _sender_key
    from tests.fakes.telegram_api import FakeBotAPI

    api = FakeBotAPI()
    samples = [
        api.push_update(api.text_update(7, "halo")),
        api.push_update(api.location_update(8, -0.89, 119.87)),
        api.push_update(api.callback_update(9, "cat:banjir", message_id=0)),
    ]
    edited = {"update_id": 99, "edited_message": samples[0]["message"]}  # no lane: None
    samples.append(edited)
    for raw in samples:
        assert _raw_sender_key(raw) == _sender_key(Update.model_validate(raw)), raw
    assert _raw_sender_key(samples[0]) == "7" and _raw_sender_key(samples[2]) == "9"


@pytest.fixture
async def tg_transport(tmp_path):  # type: ignore[no-untyped-def]
    """The real transport on JsonSession against the fake Bot API; chats it was told moved."""
    from aiogram import Bot
    from aiogram.client.telegram import TelegramAPIServer

    from bot.channels.base import RateLimits
    from bot.channels.telegram import JsonSession, TelegramTransport
    from bot.media import MediaStore
    from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeBotAPI

    moved: list[tuple[str, str, str]] = []

    async def on_chat_moved(channel: str, old: str, new: str) -> None:
        moved.append((channel, old, new))

    async with FakeBotAPI() as api:
        session = JsonSession(api=TelegramAPIServer.from_base(api.base_url))
        bot = Bot(DEFAULT_TOKEN, session=session)
        transport = TelegramTransport(
            bot, MediaStore(tmp_path, 1_000_000), RateLimits(0, 0), on_chat_moved=on_chat_moved
        )
        try:
            yield api, transport, moved
        finally:
            await session.close()


def _out(chat: int | str, text: str = "Kartu laporan PLU-2612-0001"):  # type: ignore[no-untyped-def]
    from bot.channels.base import OutboundMessage

    return OutboundMessage(1, "telegram", str(chat), Reply(text=text), "officer", None, {})


@pytest.mark.parametrize(
    ("status", "description", "outcome"),
    [
        (400, "Bad Request: message text is empty", "failed"),
        (400, "Bad Request: chat not found", "blocked"),
        (403, "Forbidden: bot was kicked from the group chat", "blocked"),
        (404, "Not Found", "blocked"),
        (409, "Conflict: something unexpected", "failed"),
        (413, "Request Entity Too Large", "failed"),
        (429, "Too Many Requests: retry after 3", "retry"),
        (500, "Internal Server Error", "retry"),
        (502, "Bad Gateway", "retry"),
        (503, "Service Unavailable", "retry"),
    ],
)
async def test_a_permanent_4xx_is_never_retried(  # type: ignore[no-untyped-def]
    tg_transport, status: int, description: str, outcome: str
) -> None:
    """4xx answers are about this message or chat and would be the same next time: failed or
    blocked, never retried; 429 and 5xx are temporary. Error texts carry no exception name."""
    api, transport, _moved = tg_transport
    api.fail_next(1, status=status, description=description)
    result = await transport.send(_out(-4001))
    assert result.status == outcome, result
    assert result.error and "Telegram" not in result.error and "Error" not in result.error[:12]
    if outcome != "retry":
        assert result.error.startswith(str(status)) or result.error.startswith("400")


async def test_a_rejected_token_pauses_the_channel(tg_transport) -> None:  # type: ignore[no-untyped-def]
    api, transport, _moved = tg_transport
    api.fail_next(1, status=401, description="Unauthorized")
    result = await transport.send(_out(42))
    assert result.status == "retry" and result.pause_channel and result.retry_after


async def test_a_proxy_page_and_a_dead_server_are_temporary(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An HTML error page (a proxy in front of the Bot API) and a closed port: retry."""
    from aiogram import Bot
    from aiogram.client.telegram import TelegramAPIServer
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from bot.channels.base import RateLimits
    from bot.channels.telegram import JsonSession, TelegramTransport
    from bot.media import MediaStore
    from tests.fakes.telegram_api import DEFAULT_TOKEN

    async def html(_request: web.Request) -> web.Response:
        return web.Response(status=502, text="<html>502 Bad Gateway</html>")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", html)
    async with TestServer(app, host="127.0.0.1") as server:
        base = str(server.make_url("")).rstrip("/")
        for url in (base, "http://127.0.0.1:9"):
            session = JsonSession(api=TelegramAPIServer.from_base(url))
            bot = Bot(DEFAULT_TOKEN, session=session)
            transport = TelegramTransport(bot, MediaStore(tmp_path, 10**6), RateLimits(0, 0))
            try:
                result = await transport.send(_out(42))
            finally:
                await session.close()
            assert result.status == "retry", (url, result)


async def test_a_group_upgraded_to_a_supergroup_gets_the_message(tg_transport) -> None:  # type: ignore[no-untyped-def]
    """Telegram answers a send to the old group id with 400 and the new id in
    `parameters.migrate_to_chat_id`: the message goes there, the move is recorded once, and
    later messages for the old id go straight to the new one."""
    api, transport, moved = tg_transport
    old = -4001
    new = api.migrate_chat(old)
    assert str(new).startswith("-100")

    first = await transport.send(_out(old, "Kartu 1"))
    assert first.status == "sent", first
    assert [m["text"] for m in api.sent_to(new)] == ["Kartu 1"]
    assert moved == [("telegram", str(old), str(new))]
    second = await transport.send(_out(old, "Kartu 2"))
    assert second.status == "sent"
    assert [m["text"] for m in api.sent_to(new)] == ["Kartu 1", "Kartu 2"]
    refused = [c for c in api.calls("sendMessage") if c.status == 400]
    assert len(refused) == 1 and refused[0].chat_id == str(old)  # asked the old id once
    assert moved == [("telegram", str(old), str(new))]


async def test_the_upgrade_service_messages_move_the_chat(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Both service messages of an upgrade (the old group's `migrate_to_chat_id`, the
    supergroup's `migrate_from_chat_id`, sent by Telegram's anonymous admin bot) report the
    move and reach the core as nothing."""
    from bot.channels.telegram import TelegramChannel
    from bot.config import Settings
    from bot.i18n import I18n
    from bot.media import MediaStore
    from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeBotAPI

    moved: list[tuple[str, str, str]] = []

    async def on_chat_moved(channel: str, old: str, new: str) -> None:
        moved.append((channel, old, new))

    async with FakeBotAPI() as api:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            telegram_bot_token=DEFAULT_TOKEN,
            telegram_api_base=api.base_url,
        )
        channel = TelegramChannel(
            settings, MediaStore(tmp_path, 10**6), I18n("id"), set(), on_chat_moved=on_chat_moved
        )
        try:
            new = api.migrate_chat(-4001)
            for update in api.migration_updates(-4001, new, user_id=6101):
                raw = api.push_update(update)
                assert await channel.to_inbound(raw) == []
        finally:
            await channel.stop()
    assert moved == [("telegram", "-4001", str(new))] * 2
