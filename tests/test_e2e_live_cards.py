"""End to end, the real `lapor run` against the fake Bot API: queue-group cards edited in place
(editMessageCaption for a photo card, editMessageText for a text card) with the buttons that
still apply, the note asked in the group with ForceReply and taken from the reply there, and
command menus per role (default, all group chats, a staff member's own chat) set and reset
through the outbox, also by the `lapor` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.dbs import database_url
from tests.e2e import Bot, buttons, running_bot, text_of, wait_until
from tests.test_e2e_officers import (
    BESUSU_BARAT,
    CITIZEN,
    GROUP,
    HEAD,
    LERE,
    OFFICER,
    file_report,
    in_group,
    join,
    lapor,
    report_by_code,
    send_report,
)

pytestmark = pytest.mark.e2e
CITIZEN_MENU = [
    "lapor",
    "laporanku",
    "status",
    "langganan",
    "berhenti",
    "batal",
    "bahasa",
    "bantuan",
]


@pytest.fixture(params=["sqlite", "postgres"])
def bot(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    with database_url(request.param, tmp_path) as url, running_bot(url, tmp_path) as b:
        yield b


def message(bot: Bot, chat: int, message_id: int) -> dict[str, Any]:
    """A message as the fake holds it now (edits included)."""
    [found] = [m for m in bot.api.sent_to(chat) if m["message_id"] == message_id]
    return found


def edited(bot: Bot, method: str, message_id: int, n: int) -> None:
    """Wait for the `n`-th successful `method` call on that message."""
    bot.api.wait_for_sync(
        lambda: (
            sum(
                1
                for c in bot.api.calls(method)
                if c.status == 200 and int(c.params.get("message_id", 0)) == message_id
            )
            >= n
        ),
        20,
    )


def test_group_cards_are_edited_in_place_and_the_note_is_asked_there(bot: Bot) -> None:
    join(bot, OFFICER, "--opd", "DLH")
    join(bot, HEAD, "--opd", "DLH", "--head")
    in_group(bot, HEAD, "/hubungkan DLH")

    # a photo card: claimed with its button, edited with editMessageCaption
    file_report(bot, CITIZEN, BESUSU_BARAT)
    before = len(bot.api.sent_to(GROUP))
    code = send_report(bot, CITIZEN)
    bot.api.wait_for_sync(lambda: len(bot.api.sent_to(GROUP)) > before, 20)
    card = bot.api.sent_to(GROUP)[before]
    rid = report_by_code(bot, code).id
    assert "Status: Baru" in card["caption"]
    n_group = len(bot.api.sent_to(GROUP))
    bot.api.push_update(
        bot.api.callback_update(
            OFFICER, f"op:ambil:{rid}", card["message_id"], chat_id=GROUP, first_name="Budi"
        )
    )
    edited(bot, "editMessageCaption", card["message_id"], 1)
    now = message(bot, GROUP, card["message_id"])
    assert "Petugas: Budi" in now["caption"] and "🙋 Diambil oleh Budi" in now["caption"]
    assert now["caption"].count("Ditangani oleh:") == 1
    assert f"op:ambil:{rid}" not in buttons(now) and f"op:selesai:{rid}" in buttons(now)
    bot.api.wait_for_sync(lambda: len(bot.api.sent_to(GROUP)) > n_group, 20)
    assert f"Laporan {code} diambil oleh Budi." in text_of(bot.api.sent_to(GROUP)[n_group:])

    # ✅ in the group: a question to reply to, and the reply is the closing note
    n_group = len(bot.api.sent_to(GROUP))
    bot.api.push_update(
        bot.api.callback_update(OFFICER, f"op:selesai:{rid}", card["message_id"], chat_id=GROUP)
    )
    bot.api.wait_for_sync(lambda: len(bot.api.sent_to(GROUP)) > n_group, 20)
    prompt = bot.api.sent_to(GROUP)[n_group]
    assert "balas pesan ini" in prompt["text"]
    [ask] = [c for c in bot.api.calls("sendMessage") if "balas pesan ini" in c.params["text"]]
    assert ask.params["reply_markup"] == {"force_reply": True}
    n_citizen = len(bot.api.sent_to(CITIZEN))
    bot.api.push_update(
        bot.api.text_update(
            OFFICER,
            "Sampah sudah diangkut truk pagi ini",
            chat_id=GROUP,
            chat_type="group",
            reply_to_message=prompt,
        )
    )
    bot.api.wait_for_sync(lambda: len(bot.api.sent_to(CITIZEN)) > n_citizen, 20)
    assert "Sampah sudah diangkut truk pagi ini" in text_of(bot.api.sent_to(CITIZEN)[n_citizen:])
    assert report_by_code(bot, code).status == "selesai"
    edited(bot, "editMessageCaption", card["message_id"], 2)
    now = message(bot, GROUP, card["message_id"])
    assert "Status: Selesai" in now["caption"] and "reply_markup" not in now  # nothing to press

    # a text card (no photo): edited with editMessageText
    file_report(bot, CITIZEN, LERE, photo=False)
    before = len(bot.api.sent_to(GROUP))
    code2 = send_report(bot, CITIZEN)
    bot.api.wait_for_sync(lambda: len(bot.api.sent_to(GROUP)) > before, 20)
    card2 = bot.api.sent_to(GROUP)[before]
    in_group(bot, OFFICER, f"/proses {code2} Dicek siang ini")
    edited(bot, "editMessageText", card2["message_id"], 1)
    now = message(bot, GROUP, card2["message_id"])
    assert "Status: Diproses" in now["text"] and "Dicek siang ini" in now["text"]
    rid2 = report_by_code(bot, code2).id
    assert f"op:proses:{rid2}" not in buttons(now) and f"op:tolak:{rid2}" in buttons(now)


def test_command_menus_follow_the_roles(tmp_path: Path) -> None:
    with running_bot(f"sqlite:///{tmp_path / 'e2e.db'}", tmp_path) as bot:
        api = bot.api

        def names(scope: dict[str, Any] | None = None, lang: str = "") -> list[str]:
            return [c["command"] for c in api.commands(scope, lang)]

        # at start: citizens by default, the queue commands in every group, id and en
        wait_until(lambda: names({"type": "all_group_chats"}, "en"), what="start-up menus")
        assert names() == CITIZEN_MENU
        assert api.commands(language_code="en")[0]["description"] == "Report a problem"
        group = names({"type": "all_group_chats"})
        assert {"antrian", "ambil", "selesai", "tolak", "alihkan", "hubungkan"} <= set(group)
        assert "lapor" not in group and "siaran" not in group

        # /daftar: the officer's own chat gets the officer's menu
        chat = {"type": "chat", "chat_id": OFFICER}
        join(bot, OFFICER, "--opd", "DLH")
        wait_until(lambda: names(chat), what="the officer's menu")
        assert {"lapor", "antrian", "ambil", "selesai"} <= set(names(chat))
        assert "siaran" not in names(chat)
        assert api.commands(chat)[names(chat).index("ambil")]["description"] == "Ambil laporan"

        # the role is taken away with the command line: back to the default menu
        lapor(bot, "officer", "remove", "--telegram", str(OFFICER))
        wait_until(lambda: not names(chat), what="the menu reset")
        assert [c.params["scope"] for c in api.calls("deleteMyCommands")] == [chat]

        # `lapor admin add`: an admin's menu, before they ever wrote to the bot
        admin = 6900
        lapor(bot, "admin", "add", "--telegram", str(admin))
        admin_chat = {"type": "chat", "chat_id": admin}
        wait_until(lambda: names(admin_chat), what="the admin's menu")
        assert {"siaran", "siaran_status", "siaran_batal", "statistik"} <= set(names(admin_chat))
        # their /bantuan lists the same
        said = text_of(bot.say(admin, "/bantuan", replies=1))
        assert "/siaran_batal NOMOR" in said and "Perintah admin:" in said
