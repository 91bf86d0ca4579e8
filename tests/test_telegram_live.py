"""The Telegram transport's special outbox kinds against the fake Bot API (real HTTP): card
edits (text and photo, not modified, gone → posted anew, no earlier card → posted), command
menus per chat (set, reset), the ForceReply keyboard, and what an update says about the sender
(handle, a reply to the bot)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from aiogram import Bot
from aiogram import methods as tg
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import ForceReply
from PIL import Image

from bot.channels.base import OutboundMessage, RateLimits
from bot.channels.telegram import JsonSession, TelegramChannel, TelegramTransport, keyboard_for
from bot.config import Settings
from bot.i18n import I18n
from bot.media import MediaStore
from handlers.events import KIND_CARD, KIND_CARD_EDIT, KIND_COMMANDS, Choice, Reply
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeBotAPI

GROUP = -100777


def out(kind: str, reply: Reply, meta: dict[str, Any], address: int = GROUP) -> OutboundMessage:
    return OutboundMessage(
        outbox_id=1,
        channel="telegram",
        address=str(address),
        reply=reply,
        kind=kind,
        identity_id=None,
        meta=meta,
    )


def card(text: str, *buttons: str) -> Reply:
    return Reply(text=text, choices=tuple(Choice(b, b) for b in buttons))


async def test_card_edits_in_place_and_falls_back_to_a_new_card(tmp_path: Path) -> None:
    known: dict[int, str] = {}

    async def lookup(channel: str, address: str, report_id: int) -> str | None:
        assert channel == "telegram" and address == str(GROUP)
        return known.get(report_id)

    media = MediaStore(tmp_path, 1_000_000)
    async with FakeBotAPI() as api:
        session = JsonSession(api=TelegramAPIServer.from_base(api.base_url))
        transport = TelegramTransport(
            Bot(DEFAULT_TOKEN, session=session), media, RateLimits(0, 0), card_lookup=lookup
        )
        try:
            first = await transport.send(out(KIND_CARD, card("Status: Baru", "op:ambil:1"), {}))
            known[1] = str(first.message_id)
            edit = card("Status: Diproses", "op:selesai:1")
            res = await transport.send(out(KIND_CARD_EDIT, edit, {"card_of": 1}))
            assert (res.status, res.message_id) == ("sent", known[1])
            [stored] = api.sent_to(GROUP)
            assert stored["text"] == "Status: Diproses" and stored.get("edit_date")
            assert (
                stored["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "op:selesai:1"
            )
            # the same again: Telegram says "not modified", which is done
            again = await transport.send(out(KIND_CARD_EDIT, edit, {"card_of": 1}))
            assert again.status == "sent" and len(api.sent_to(GROUP)) == 1
            # closed: the buttons go
            await transport.send(out(KIND_CARD_EDIT, card("Status: Selesai"), {"card_of": 1}))
            assert "reply_markup" not in api.sent_to(GROUP)[0]
            # no earlier card (never sent): posted as a new one
            fresh = await transport.send(out(KIND_CARD_EDIT, card("Kartu 2", "x"), {"card_of": 2}))
            assert fresh.status == "sent" and api.sent_to(GROUP)[-1]["text"] == "Kartu 2"
            # the earlier card was deleted in the group: posted anew
            known[3] = str(fresh.message_id)
            await session.post_json(
                transport.bot,
                tg.DeleteMessage,
                {"chat_id": GROUP, "message_id": int(known[3])},
            )
            anew = await transport.send(out(KIND_CARD_EDIT, card("Kartu 3"), {"card_of": 3}))
            assert anew.status == "sent" and anew.message_id != known[3]

            # a photo card: its caption is edited
            buf = io.BytesIO()
            Image.new("RGB", (64, 48), (10, 120, 200)).save(buf, "JPEG")
            ref = media.store_image(buf.getvalue())
            photo = await transport.send(out(KIND_CARD, Reply(text="Foto: Baru", photo=ref), {}))
            known[4] = str(photo.message_id)
            res = await transport.send(
                out(KIND_CARD_EDIT, Reply(text="Foto: Diproses", photo=ref), {"card_of": 4})
            )
            assert res.status == "sent"
            assert [c.method for c in api.calls() if c.method.startswith("edit")][-1] == (
                "editMessageCaption"
            )
            [shown] = [m for m in api.sent_to(GROUP) if str(m["message_id"]) == known[4]]
            assert shown["caption"] == "Foto: Diproses" and shown["photo"]
        finally:
            await session.close()


async def test_menu_messages_set_and_reset_a_chats_commands(tmp_path: Path) -> None:
    async with FakeBotAPI() as api:
        session = JsonSession(api=TelegramAPIServer.from_base(api.base_url))
        transport = TelegramTransport(
            Bot(DEFAULT_TOKEN, session=session), MediaStore(tmp_path, 1), RateLimits(0, 0)
        )
        scope = {"type": "chat", "chat_id": "6101"}
        commands = [{"command": "antrian", "description": "Laporan terbuka OPD Anda"}]
        try:
            meta = {"scope": scope, "commands": commands}
            res = await transport.send(out(KIND_COMMANDS, Reply(text=""), meta, 6101))
            assert res.status == "sent"
            assert api.commands({"type": "chat", "chat_id": 6101}) == commands  # a number
            assert api.sent_to(6101) == []  # a menu is not a message
            reset = {"scope": scope, "commands": []}
            await transport.send(out(KIND_COMMANDS, Reply(text=""), reset, 6101))
            assert api.commands({"type": "chat", "chat_id": 6101}) == []
        finally:
            await session.close()


async def test_force_reply_and_what_an_update_says_about_its_sender(tmp_path: Path) -> None:
    markup = keyboard_for(Reply(text="Tulis catatannya", force_reply=True))
    assert ForceReply.model_validate(markup).force_reply is True
    api = FakeBotAPI()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=DEFAULT_TOKEN,
        telegram_api_base="http://127.0.0.1:9",
    )
    channel = TelegramChannel(settings, MediaStore(tmp_path, 1), I18n("id"), {"selesai"})
    bot_msg = {
        "message_id": 5,
        "from": api.bot_user,
        "chat": {"id": GROUP, "type": "group", "title": "DLH"},
        "date": 0,
        "text": "Budi, balas pesan ini.",
    }

    def in_group(text: str, earlier: dict[str, Any], **kw: Any) -> dict[str, Any]:
        update = api.text_update(
            6101, text, chat_id=GROUP, chat_type="group", reply_to_message=earlier, **kw
        )
        return {"update_id": 1, **update}

    [ev] = await channel.to_inbound(in_group("Sudah diangkut", bot_msg, username="budi_palu"))
    assert ev.reply_to_bot and ev.username == "budi_palu" and ev.chat_type == "group"
    someone = {**bot_msg, "from": api.user(6200, "Ani")}
    [ev] = await channel.to_inbound(in_group("x", someone))
    assert not ev.reply_to_bot and ev.username == ""  # "": Telegram says there is none
    await channel.bot.session.close()
