"""End-to-end support: the fake Bot API in a thread and the real `lapor run` process."""

from __future__ import annotations

import io
import json
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

from storage.db import Database
from tests.fakes.procs import BotProcess, free_port
from tests.fakes.telegram_api import FakeBotAPI


def jpeg_with_exif(color: str = "red") -> bytes:
    img = Image.new("RGB", (64, 48), color)
    exif = Image.Exif()
    exif[0x010F] = "SecretPhoneMaker"  # Make
    exif[0x0131] = "GPS 0.8892S 119.8658E"  # Software: stands in for private metadata
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


class Bot:
    """A running bot process plus the fake Telegram it talks to."""

    def __init__(self, api: FakeBotAPI, proc: BotProcess, db_url: str, media: Path) -> None:
        self.api = api
        self.proc = proc
        self.db_url = db_url
        self.media = media

    # --- talking to it --------------------------------------------------------------------
    def _push_and_wait(
        self, uid: int, update: dict[str, Any], replies: int, timeout: float
    ) -> list[dict[str, Any]]:
        before = len(self.api.sent_to(uid))
        self.api.push_update(update)
        self.api.wait_for_sync(lambda: len(self.api.sent_to(uid)) >= before + replies, timeout)
        return self.api.sent_to(uid)[before:]

    def say(self, uid: int, text: str, replies: int = 1, timeout: float = 15) -> list[dict]:
        return self._push_and_wait(uid, self.api.text_update(uid, text), replies, timeout)

    def press(self, uid: int, data: str, replies: int = 1, timeout: float = 15) -> list[dict]:
        return self._push_and_wait(uid, self.api.callback_update(uid, data), replies, timeout)

    def share_location(self, uid: int, lat: float, lon: float, replies: int = 1) -> list[dict]:
        return self._push_and_wait(uid, self.api.location_update(uid, lat, lon), replies, 15)

    def send_photo(self, uid: int, data: bytes, replies: int = 1) -> list[dict]:
        return self._push_and_wait(uid, self.api.photo_update(uid, data), replies, 20)

    def db(self) -> Database:
        return Database(self.db_url)


def buttons(msg: dict[str, Any]) -> list[str]:
    markup = msg.get("reply_markup") or {}
    return [b.get("callback_data") for row in markup.get("inline_keyboard", []) for b in row]


def text_of(msgs: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text") or m.get("caption") or "" for m in msgs)


def base_env(db_url: str, tmp: Path, **extra: str) -> dict[str, str]:
    """What every bot process under test gets: its database, media folder, a free port."""
    env = {
        "DATABASE_URL": db_url,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(free_port()),
        "MEDIA_DIR": str(tmp / "media"),
        "CITY": "palu",
        "LOG_LEVEL": "INFO",
    }
    env.update(extra)
    return env


def web_only_env(db_url: str, tmp: Path, **extra: str) -> dict[str, str]:
    """No chat channel (tokens blanked, whatever the environment says) and no scheduler: the
    web demo keeps `lapor run` going for its pages and APIs."""
    web = {
        "DEMO_ENABLED": "true",
        "TELEGRAM_BOT_TOKEN": "",
        "WHATSAPP_TOKEN": "",
        "WHATSAPP_PHONE_ID": "",
        "SCHEDULER_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    return base_env(db_url, tmp, **{**web, **extra})


def bot_env(api: FakeBotAPI, db_url: str, tmp: Path, **extra: str) -> dict[str, str]:
    telegram = {
        "TELEGRAM_BOT_TOKEN": api.token,
        "TELEGRAM_API_BASE": api.base_url,
        "TELEGRAM_POLL_TIMEOUT": "1",
        "TELEGRAM_RATE_GLOBAL": "0",
        "TELEGRAM_RATE_PER_CHAT": "0",
    }
    return base_env(db_url, tmp, **{**telegram, **extra})


@contextmanager
def running_bot(
    db_url: str, tmp: Path, *, api: FakeBotAPI | None = None, **extra: str
) -> Iterator[Bot]:
    own_api = api is None
    api = api or FakeBotAPI().start_in_thread()
    env = bot_env(api, db_url, tmp, **extra)
    proc = BotProcess(env, log_path=tmp / "bot.log")
    try:
        proc.start()
        proc.wait_ready(timeout=60)
        yield Bot(api, proc, db_url, tmp / "media")
    except Exception:
        print(proc.logs()[-5000:])
        raise
    finally:
        proc.cleanup()
        if own_api:
            api.stop()


def wait_until(cond: Any, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def health(proc: BotProcess) -> dict[str, Any]:
    """The process's /healthz answer."""
    with urllib.request.urlopen(proc.health_url, timeout=10) as resp:
        body: dict[str, Any] = json.loads(resp.read())
        return body
