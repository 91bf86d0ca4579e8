"""Telegram adapter pieces that need no server: keyboards and aiogram's response classes."""

from __future__ import annotations

import gc

from aiogram.methods import SendMessage
from aiogram.methods.base import Response
from aiogram.types import InlineKeyboardMarkup, ReplyKeyboardMarkup, ReplyKeyboardRemove

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
    loc = keyboard_for(Reply(text="x", ask_location=True, location_label="Kirim lokasi"))
    assert isinstance(loc, ReplyKeyboardMarkup)
    assert loc.keyboard[0][0].request_location is True
    long_id = "rv:" + "é" * 60  # 123 bytes of UTF-8
    markup = keyboard_for(Reply(text="x", choices=(Choice("a", "A"), Choice(long_id, "B"))))
    assert isinstance(markup, InlineKeyboardMarkup)
    data = [b.callback_data or "" for row in markup.inline_keyboard for b in row]
    assert data[0] == "a"
    assert len(data[1].encode()) <= CALLBACK_MAX_BYTES and data[1].startswith("rv:é")
    assert isinstance(keyboard_for(Reply(text="x", remove_keyboard=True)), ReplyKeyboardRemove)
    assert keyboard_for(Reply(text="x")) is None
