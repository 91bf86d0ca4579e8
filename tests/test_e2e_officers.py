"""End to end: officers close reports from the chat, against the real `lapor run` process and
the fake Telegram Bot API.  Invites come from the real `lapor invite` command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from storage.models import Report
from storage.repo import Repo
from storage.work_models import QueueGroup
from storage.work_repo import WorkRepo
from tests.conftest import REPO_ROOT
from tests.dbs import database_url
from tests.e2e import Bot, buttons, health, jpeg_with_exif, running_bot, text_of, wait_until

pytestmark = pytest.mark.e2e

CITIZEN, FAN, OFFICER, HEAD, PUPR_OFFICER = 6001, 6002, 6101, 6102, 6201
GROUP = -100777
BESUSU_BARAT = (-0.8892, 119.8658)
LERE = (-0.8870, 119.8480)


def lapor(bot: Bot, *args: str) -> str:
    """Run the real CLI against the bot's database; returns stdout."""
    env = {**os.environ, **bot.proc.env}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def push(bot: Bot, chat: int, update: dict[str, Any], n: int = 1) -> list[dict[str, Any]]:
    """Push an update and wait for `n` new messages in `chat`."""
    before = len(bot.api.sent_to(chat))
    bot.api.push_update(update)
    bot.api.wait_for_sync(lambda: len(bot.api.sent_to(chat)) >= before + n, 20)
    return bot.api.sent_to(chat)[before:]


def in_group(bot: Bot, uid: int, text: str, n: int = 1, wait: int = GROUP) -> list[dict]:
    return push(bot, wait, bot.api.text_update(uid, text, chat_id=GROUP, chat_type="group"), n)


def wait_for(bot: Bot, chat: int, n: int) -> list[dict[str, Any]]:
    """Wait until `chat` has at least `n` messages in all; return them."""
    bot.api.wait_for_sync(lambda: len(bot.api.sent_to(chat)) >= n, 20)
    return bot.api.sent_to(chat)


def file_report(bot: Bot, uid: int, point: tuple[float, float], photo: bool = True) -> list[dict]:
    bot.say(uid, "/lapor")
    bot.press(uid, "cat:sampah")
    bot.say(uid, "Sampah menumpuk di pinggir jalan tiga hari, bau sekali")
    bot.share_location(uid, *point)
    if photo:
        return bot.send_photo(uid, jpeg_with_exif())  # the review card follows the photo
    return bot.press(uid, "ph:done")


def send_report(bot: Bot, uid: int) -> str:
    """Press Send; wait until the bot has said everything (other modules may add a question)."""
    out = bot.press(uid, "rv:send")
    settle(bot, uid)
    m = re.search(r"PLU-\d{4}-\d{4}", text_of(out))
    assert m, text_of(out)
    return m.group(0)


def settle(bot: Bot, chat: int, quiet: float = 0.7) -> None:
    last = -1
    while len(bot.api.sent_to(chat)) != last:
        last = len(bot.api.sent_to(chat))
        time.sleep(quiet)


def report_by_code(bot: Bot, code: str) -> Report:
    with bot.db().session() as s:
        rep = Repo(s).report_by_code(code)
        assert rep is not None
        return rep


def join(bot: Bot, uid: int, *invite_args: str) -> None:
    code = lapor(bot, "invite", *invite_args).strip()
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", code), code
    out = bot.say(uid, f"/daftar {code}")
    assert "Selamat bergabung" in text_of(out)


@pytest.fixture(params=["sqlite", "postgres"])
def bot(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    with database_url(request.param, tmp_path) as url, running_bot(url, tmp_path) as b:
        yield b


@pytest.fixture
def sqlite_bot(tmp_path: Path):  # type: ignore[no-untyped-def]
    with running_bot(f"sqlite:///{tmp_path / 'e2e.db'}", tmp_path) as b:
        yield b


def test_report_group_card_take_progress_resolve_proof_reopen_rating(bot: Bot) -> None:
    join(bot, OFFICER, "--opd", "DLH")
    join(bot, HEAD, "--opd", "DLH", "--head")
    assert "antrean" in text_of(in_group(bot, HEAD, "/hubungkan DLH")).lower()
    listing = lapor(bot, "officer", "list")
    assert "officer\tDLH" in listing and "head\tDLH" in listing

    # the report lands in the group as a card with photo, map link and buttons
    file_report(bot, CITIZEN, BESUSU_BARAT)
    before = len(bot.api.sent_to(GROUP))
    out = bot.press(CITIZEN, "rv:send")
    code = re.search(r"PLU-\d{4}-\d{4}", text_of(out)).group(0)  # type: ignore[union-attr]
    card = wait_for(bot, GROUP, before + 1)[-1]
    assert code in card["caption"] and "Besusu Barat" in card["caption"]
    assert "openstreetmap.org" in card["caption"] and card.get("photo")
    rid = report_by_code(bot, code).id
    assert f"op:ambil:{rid}" in buttons(card)

    # /ambil by button in the group, then /proses, /selesai: the citizen hears each step
    before = len(bot.api.sent_to(GROUP))
    bot.api.push_update(bot.api.callback_update(OFFICER, f"op:ambil:{rid}", chat_id=GROUP))
    assert "diambil oleh" in text_of(wait_for(bot, GROUP, before + 1)[before:])
    n_citizen = len(bot.api.sent_to(CITIZEN))
    in_group(bot, OFFICER, f"/proses {code} Truk dijadwalkan besok pagi")
    pushed = wait_for(bot, CITIZEN, n_citizen + 1)[n_citizen:]
    assert "sedang ditangani" in text_of(pushed) and "Truk dijadwalkan" in text_of(pushed)
    n_citizen = len(bot.api.sent_to(CITIZEN))
    out = in_group(bot, OFFICER, f"/selesai {code} Sampah sudah diangkut")
    assert "pribadi" in text_of(out)
    pushed = wait_for(bot, CITIZEN, n_citizen + 1)[n_citizen:]
    assert "Sampah sudah diangkut" in text_of(pushed) and "teratasi" in text_of(pushed)
    assert buttons(pushed[-1]) == [f"fb:ya:{rid}", f"fb:belum:{rid}"]

    # the proof photo, sent privately right after, reaches the citizen as a photo
    n_citizen = len(bot.api.sent_to(CITIZEN))
    out = bot.send_photo(OFFICER, jpeg_with_exif("blue"))
    assert "Foto bukti tersimpan" in text_of(out)
    proof = wait_for(bot, CITIZEN, n_citizen + 1)[-1]
    assert proof.get("photo") and code in proof["caption"]

    # "Belum" reopens it in the same group, with the citizen's comment
    before = len(bot.api.sent_to(GROUP))
    out = bot.press(CITIZEN, f"fb:belum:{rid}")
    assert "dibuka kembali" in text_of(out)
    assert "Dibuka kembali" in text_of(wait_for(bot, GROUP, before + 1)[before:])
    before = len(bot.api.sent_to(GROUP))
    bot.say(CITIZEN, "Masih ada sisa sampah di selokan")
    assert "Masih ada sisa sampah" in text_of(wait_for(bot, GROUP, before + 1)[before:])
    assert report_by_code(bot, code).status == "diproses"

    # resolved again; "Ya" → rating
    n_citizen = len(bot.api.sent_to(CITIZEN))
    in_group(bot, OFFICER, f"/selesai {code} Selokan juga sudah dibersihkan")
    wait_for(bot, CITIZEN, n_citizen + 1)
    out = bot.press(CITIZEN, f"fb:ya:{rid}")
    assert buttons(out[-1]) == [f"fb:nilai:{rid}:{n}" for n in range(1, 6)]
    out = bot.press(CITIZEN, f"fb:nilai:{rid}:5")
    assert "Terima kasih" in text_of(out)
    with bot.db().session() as s:
        track = WorkRepo(Repo(s)).track(rid)  # type: ignore[arg-type]
        assert track is not None and track.rating == 5 and track.closed_at is not None


def test_hand_over_refusals_and_duplicates(sqlite_bot: Bot) -> None:
    bot = sqlite_bot
    join(bot, OFFICER, "--opd", "DLH")
    join(bot, PUPR_OFFICER, "--opd", "PUPR")
    file_report(bot, CITIZEN, BESUSU_BARAT, photo=False)
    n_officer = len(bot.api.sent_to(OFFICER))
    code = send_report(bot, CITIZEN)
    card = wait_for(bot, OFFICER, n_officer + 1)[-1]  # no group: the officer gets it privately
    assert code in card["text"] and buttons(card)

    # every officer command from the citizen and from another OPD's officer is refused
    commands = [
        "/lihat {c}",
        "/ambil {c}",
        "/proses {c} x",
        "/selesai {c} x",
        "/tolak {c} x",
        "/alihkan {c} PUPR x",
        "/catatan {c} x",
        "/statistik",
    ]
    for uid in (CITIZEN, PUPR_OFFICER):
        for cmd in [*commands, "/antrian"] if uid == CITIZEN else commands:
            said = text_of(bot.say(uid, cmd.format(c=code)))
            assert "hanya" in said.lower(), (uid, cmd, said)
    rep = report_by_code(bot, code)
    assert rep.status == "baru" and rep.opd == "DLH"

    # hand-over DLH → PUPR: the citizen is told, the PUPR officer gets the card
    n_citizen = len(bot.api.sent_to(CITIZEN))
    n_pupr = len(bot.api.sent_to(PUPR_OFFICER))
    bot.say(OFFICER, f"/alihkan {code} PUPR Ini selokan tersumbat")
    assert "dialihkan ke Dinas PUPR" in text_of(wait_for(bot, CITIZEN, n_citizen + 1)[n_citizen:])
    assert code in text_of(wait_for(bot, PUPR_OFFICER, n_pupr + 1)[n_pupr:])
    assert report_by_code(bot, code).opd == "PUPR"
    assert "milik Dinas PUPR" in text_of(bot.say(OFFICER, f"/proses {code}"))
    bot.say(PUPR_OFFICER, f"/proses {code} dicek besok")
    assert report_by_code(bot, code).status == "diproses"

    # duplicate check: a second citizen nearby supports the first report instead
    file_report(bot, CITIZEN, LERE, photo=False)
    first = send_report(bot, CITIZEN)
    bot.say(FAN, "/lapor")
    bot.press(FAN, "cat:sampah")
    bot.say(FAN, "Sampah menumpuk di pinggir jalan tiga hari, bau sekali")
    out = bot.share_location(FAN, LERE[0] + 0.0002, LERE[1])  # offered right after the place
    assert first in text_of(out) and "dup:new" in buttons(out[-1])
    rid = report_by_code(bot, first).id
    out = bot.press(FAN, f"dup:follow:{rid}")
    assert "mendukung" in text_of(out)
    assert report_by_code(bot, first).supporters == 1
    with bot.db().session() as s:
        assert len(list(s.exec(select(Report)))) == 2  # no new report was made


BASIC_GROUP = -4001  # a basic group's id; upgraded, it becomes a supergroup -100…


def queue_chat(bot: Bot, opd: str) -> str | None:
    with bot.db().session() as s:
        group = s.get(QueueGroup, opd)
        return group.chat_id if group else None


def link_basic_group(bot: Bot) -> None:
    join(bot, OFFICER, "--opd", "DLH")
    join(bot, HEAD, "--opd", "DLH", "--head")
    update = bot.api.text_update(HEAD, "/hubungkan DLH", chat_id=BASIC_GROUP, chat_type="group")
    assert "antrean" in text_of(push(bot, BASIC_GROUP, update)).lower()
    assert queue_chat(bot, "DLH") == str(BASIC_GROUP)


def test_queue_group_upgraded_to_a_supergroup_is_followed_from_the_400(bot: Bot) -> None:
    """The group was upgraded while nobody wrote in it: the first card to the old id gets
    Telegram's 400 with `migrate_to_chat_id`, goes to the supergroup, and the queue group
    follows; later cards go there directly; nothing is retried or lost."""
    link_basic_group(bot)
    supergroup = bot.api.migrate_chat(BASIC_GROUP)

    file_report(bot, CITIZEN, BESUSU_BARAT, photo=False)
    code = send_report(bot, CITIZEN)
    [card] = wait_for(bot, supergroup, 1)
    assert code in card["text"] and buttons(card)
    wait_until(lambda: queue_chat(bot, "DLH") == str(supergroup), what="queue group moved")

    file_report(bot, FAN, LERE, photo=False)
    second = send_report(bot, FAN)
    assert second in text_of(wait_for(bot, supergroup, 2)[1:])
    refused = [c for c in bot.api.calls("sendMessage") if c.status == 400]
    assert [c.chat_id for c in refused] == [str(BASIC_GROUP)]  # asked once, then followed
    body = health(bot.proc)
    assert body["failed_24h"] == {} and body["outside_window_24h"] == {}


def test_queue_group_upgraded_to_a_supergroup_is_followed_from_the_service_message(
    sqlite_bot: Bot,
) -> None:
    """The upgrade's service messages move the queue group before any card is sent."""
    bot = sqlite_bot
    link_basic_group(bot)
    supergroup = bot.api.migrate_chat(BASIC_GROUP)
    for update in bot.api.migration_updates(BASIC_GROUP, supergroup, user_id=OFFICER):
        bot.api.push_update(update)
    wait_until(lambda: queue_chat(bot, "DLH") == str(supergroup), what="queue group moved")

    file_report(bot, CITIZEN, BESUSU_BARAT, photo=False)
    code = send_report(bot, CITIZEN)
    [card] = wait_for(bot, supergroup, 1)
    assert code in card["text"]
    assert [c for c in bot.api.calls("sendMessage") if c.status == 400] == []
    # officers work the report from the supergroup as before
    rid = report_by_code(bot, code).id
    bot.api.push_update(bot.api.callback_update(OFFICER, f"op:ambil:{rid}", chat_id=supergroup))
    assert "diambil oleh" in text_of(wait_for(bot, supergroup, 2)[1:])
