"""Telegram calls that are not a new message: live queue cards and command menus.

Both arrive as outbox rows of a special kind (`handlers.events`), so they are ordered and
retried like any message:

- `KIND_CARD_EDIT`: the report card as it is now. The earlier card's message id is on its
  outbox row; `CardLookup` (given by the composition root) finds it. The card is edited with
  `editMessageText`, or `editMessageCaption` for a photo card, with the buttons that still
  apply (none: the keyboard is removed). No earlier card (never sent, or deleted) → the card is
  sent anew; "message is not modified" counts as done.
- `KIND_COMMANDS`: a person's menu in their private chat (`setMyCommands` with a
  `BotCommandScopeChat`), or `deleteMyCommands` for that scope when the list is empty, which
  brings back the default menu.

The menus set at start (default scope: citizens; all group chats: the queue commands) come
from `start_menus`. Errors raise aiogram's exceptions: the transport maps them as for a send.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiogram import methods as tg
from aiogram.exceptions import TelegramBadRequest

from bot.channels.base import OutboundMessage, SendResult
from handlers import help as helptext
from handlers.events import KIND_CARD, KIND_CARD_EDIT, KIND_COMMANDS, Reply

if TYPE_CHECKING:
    from bot.channels.telegram import TelegramTransport

# (channel, chat address, report id) → the Telegram message id of the card there, if any
CardLookup = Callable[[str, str, int], Awaitable[str | None]]
SPECIAL_KINDS = frozenset({KIND_CARD_EDIT, KIND_COMMANDS})
GONE = ("message to edit not found", "message can't be edited", "there is no text in the message")


def start_menus(i18n: Any) -> list[tuple[dict[str, Any], str | None, list[tuple[str, str]]]]:
    """(scope, language code or None for the default, commands) set once at start."""
    out = []
    for lang in ("id", "en"):
        _ = (lambda lg: lambda m: i18n.gettext(lg, m))(lang)
        code = None if lang == i18n.default else lang
        out.append(({"type": "default"}, code, helptext.menu(_, {helptext.CITIZEN})))
        staff = {helptext.OFFICER, helptext.HEAD}
        out.append(({"type": "all_group_chats"}, code, helptext.menu(_, staff, group=True)))
    return out


def chat_id(address: str) -> int | str:
    return int(address) if address.lstrip("-").isdigit() else address


async def send_special(transport: TelegramTransport, msg: OutboundMessage) -> SendResult:
    if msg.kind == KIND_COMMANDS:
        return await set_menu(transport, msg)
    return await edit_card(transport, msg)


async def set_menu(transport: TelegramTransport, msg: OutboundMessage) -> SendResult:
    scope = dict(msg.meta.get("scope") or {"type": "chat", "chat_id": msg.address})
    if "chat_id" in scope:
        scope["chat_id"] = chat_id(str(scope["chat_id"]))
    commands = list(msg.meta.get("commands") or [])
    if commands:
        await transport.call(tg.SetMyCommands, {"commands": commands, "scope": scope})
    else:
        await transport.call(tg.DeleteMyCommands, {"scope": scope})
    return SendResult(status="sent")


async def edit_card(transport: TelegramTransport, msg: OutboundMessage) -> SendResult:
    report_id = msg.meta.get("card_of")
    lookup = transport.card_lookup
    earlier = None
    if lookup is not None and isinstance(report_id, int):
        earlier = await lookup(msg.channel, msg.address, report_id)
    if earlier is None:
        return await transport.send(dataclasses.replace(msg, kind=KIND_CARD))
    reply: Reply = msg.reply
    body: dict[str, Any] = {"chat_id": chat_id(msg.address), "message_id": int(earlier)}
    markup = keyboard(reply)
    if markup is not None:
        body["reply_markup"] = markup
    try:
        if reply.photo is not None:
            await transport.call(tg.EditMessageCaption, {**body, "caption": reply.text[:1024]})
        else:
            await transport.call(tg.EditMessageText, {**body, "text": reply.text[:4096]})
    except TelegramBadRequest as exc:
        text = exc.message.lower()
        if "message is not modified" in text:
            return SendResult(status="sent", message_id=earlier)
        if any(g in text for g in GONE):  # deleted, too old, or of another type: post it anew
            return await transport.send(dataclasses.replace(msg, kind=KIND_CARD))
        raise
    return SendResult(status="sent", message_id=earlier)


def keyboard(reply: Reply) -> dict[str, Any] | None:
    """An edited message can only carry an inline keyboard (or none)."""
    from bot.channels.telegram import keyboard_for

    markup = keyboard_for(dataclasses.replace(reply, ask_location=False, force_reply=False))
    return markup if markup and "inline_keyboard" in markup else None
