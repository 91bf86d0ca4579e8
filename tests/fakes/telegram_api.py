"""A fake Telegram Bot API server (aiohttp.web on 127.0.0.1) for tests and benchmarks.

It speaks enough of https://core.telegram.org/bots/api for aiogram 3.x: the same URL layout,
the same `{"ok": ..., "result"| "error_code", "description", "parameters"}` envelopes and the
same error descriptions for the cases we care about (401, 403 blocked, 404 unknown method,
409 webhook conflict, 429 with `retry_after`, 400 for bad text/caption/buttons, and 400 with
`parameters.migrate_to_chat_id` for a group upgraded to a supergroup: `migrate_chat`).

Three ways to run it:

* in a running loop: ``async with FakeBotAPI() as api: ... api.base_url``
* from sync code: ``api.start_in_thread()`` ... ``api.stop()`` (helpers are thread-safe)
* as a process: ``python -m tests.fakes.telegram_api --port 0`` prints the base URL on the first
  stdout line; ``/_fake/...`` control routes then push updates and read statistics.

Everything the bot calls is recorded as `Call` objects; updates are injected with
`push_update` and the builders (`text_update`, `location_update`, `photo_update`,
`callback_update`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import json
import math
import re
import secrets
import signal
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, ClientSession, ClientTimeout, web

DEFAULT_TOKEN = "123456:TEST-token"
BOT_ID = 123456
#: methods that create a message; rate limits and `fail_next` apply to these
SEND_METHODS = frozenset({"sendMessage", "sendPhoto"})
#: methods refused with 403 for a blocked chat
BLOCKABLE_METHODS = SEND_METHODS | {"sendChatAction"}
JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "commands",
        "scope",
        "allowed_updates",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "media",
    }
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
HTTP_DESCRIPTIONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
BUTTON_KINDS = frozenset(
    {
        "callback_data",
        "url",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    }
)
COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
#: sendMessage/sendPhoto with `allow_paid_broadcast` (Bot API 7.11): up to 1,000 messages a
#: second overall, ignoring the free broadcast limit, for 0.1 Star each; 1 a second per chat
#: still holds.  (The two lanes are counted apart: free sends never wait for paid ones.)
PAID_RATE = 1000.0
PAID_STARS = 0.1
PHOTO_SIDES = (90, 320, 800, 1280)


class ApiError(Exception):
    """An error answer: HTTP status, description and optional `parameters`."""

    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            out["parameters"] = self.parameters
        return out


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


@dataclass(frozen=True)
class Call:
    """One request the bot made, recorded when answered (whatever the outcome).

    `at` is when the request arrived (time.time()); `status` is the HTTP status answered.
    """

    method: str
    params: dict[str, Any]
    at: float
    chat_id: str | None
    status: int = 200


@dataclass
class FileRecord:
    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    width: int = 0
    height: int = 0


@dataclass
class Stats:
    """Counters for pacing checks: 429s, 403s, injected failures, send timestamps per chat."""

    n_429: int = 0
    n_403: int = 0
    n_injected: int = 0
    sent_total: int = 0
    paid_total: int = 0  # sent with allow_paid_broadcast: 0.1 Star each
    send_times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def max_in_window(self, chat_id: str | int | None = None, window: float = 1.0) -> int:
        """Most successful sends inside any `window` seconds (one chat, or all chats)."""
        if chat_id is not None:
            times = sorted(self.send_times.get(str(chat_id), []))
        else:
            times = sorted(t for ts in self.send_times.values() for t in ts)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= window:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    @property
    def stars_spent(self) -> float:
        """Stars the bot's balance paid for paid broadcasts (0.1 a message, Bot API 7.11)."""
        return round(self.paid_total * PAID_STARS, 1)

    def counters(self) -> dict[str, Any]:
        return {
            "n_429": self.n_429,
            "n_403": self.n_403,
            "n_injected": self.n_injected,
            "sent_total": self.sent_total,
            "paid_total": self.paid_total,
            "stars_spent": self.stars_spent,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.counters(),
            "send_times": {k: list(v) for k, v in self.send_times.items()},
        }


class _Window:
    """Sliding-window limiter: at most `count` events per `span` seconds."""

    def __init__(self, rate: float) -> None:
        self.count = max(1, math.floor(rate))
        self.span = self.count / rate

    def retry_after(self, times: deque[float], now: float) -> int:
        """0 if one more event fits, else whole seconds to wait (Telegram style, ≥ 1)."""
        while times and now - times[0] >= self.span:
            times.popleft()
        if len(times) < self.count:
            return 0
        return max(1, math.ceil(times[0] + self.span - now))


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            return int(img.width), int(img.height)
    except Exception:
        return None


def _thumbnail(data: bytes, side: int) -> tuple[bytes, int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB")
        rgb.thumbnail((side, side))
        buf = io.BytesIO()
        rgb.save(buf, "JPEG", quality=80)
        return buf.getvalue(), rgb.width, rgb.height


class FakeBotAPI:
    """The fake server.  All public helpers may be called from any thread."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        rate_global: float = 0,
        rate_per_chat: float = 0,
        rate_paid: float = PAID_RATE,
        delay: float = 0.0,
        strict_chats: bool = False,
        bot_username: str = "lapor_warga_test_bot",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.rate_global = rate_global
        self.rate_per_chat = rate_per_chat
        self.rate_paid = rate_paid
        self.delay = delay
        # Webhook mode behind a load balancer: updates go round-robin to these URLs (several
        # bot processes) instead of the one URL the bot set; see `deliver_to`.
        self.webhook_targets: list[str] = []
        self._delivery: asyncio.Task[None] | None = None
        self._delivery_wake: asyncio.Event | None = None
        self.delivered: list[tuple[str, int]] = []  # (target URL, update_id) accepted
        self._webhook_secret: str | None = None
        self.strict_chats = strict_chats
        self.host = host
        self.port = port
        self.bot_user: dict[str, Any] = {
            "id": int(token.split(":")[0]) if token.split(":")[0].isdigit() else BOT_ID,
            "is_bot": True,
            "first_name": "Lapor Warga Test",
            "username": bot_username,
        }
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._pollers: set[asyncio.Future[None]] = set()
        self._current_poll: asyncio.Future[None] | None = None
        self._closing = False
        self._in_flight: dict[str, int] = defaultdict(int)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget everything (calls, updates, messages, files, webhook, limits, failures)."""
        with self._lock:
            self._calls: list[Call] = []
            self._updates: list[dict[str, Any]] = []
            self._next_update_id = 100_000_001
            self._next_message_id = 1
            self._messages: dict[tuple[str, int], dict[str, Any]] = {}
            self._sent: list[dict[str, Any]] = []
            self._deleted: set[tuple[str, int]] = set()
            self._chats: dict[str, dict[str, Any]] = {}
            self._files: dict[str, FileRecord] = {}
            self._file_paths: dict[str, FileRecord] = {}
            self._photo_sets: dict[str, list[dict[str, Any]]] = {}
            self._callbacks: dict[str, dict[str, Any]] = {}
            self.callback_answers: dict[str, dict[str, Any]] = {}
            self.chat_actions: list[tuple[str, str]] = []
            self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
            self.webhook: dict[str, Any] = {}
            self._allowed_updates: list[str] = []
            self._blocked: set[str] = set()
            self._migrated: dict[str, int] = {}  # old group id → supergroup id
            self._fail_queue: deque[tuple[int, str]] = deque()
            self._global_times: deque[float] = deque()
            self._paid_times: deque[float] = deque()
            self._chat_times: dict[str, deque[float]] = defaultdict(deque)
            self.stats = Stats()

    def reset_calls(self) -> None:
        """Forget recorded calls and sent messages (keeps updates, files, settings)."""
        with self._lock:
            self._calls.clear()
            self._sent.clear()
            self.stats = Stats()

    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("FakeBotAPI is not running")
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ inspection
    def calls(self, method: str | None = None) -> list[Call]:
        """Recorded calls, optionally only one method (name case-insensitive)."""
        with self._lock:
            if method is None:
                return list(self._calls)
            low = method.lower()
            return [c for c in self._calls if c.method.lower() == low]

    def in_flight(self, method: str) -> int:
        """How many requests of `method` are being handled now (e.g. a pending long poll)."""
        with self._lock:
            return self._in_flight.get(_CANONICAL.get(method.lower(), method), 0)

    def sent_to(self, chat_id: int | str) -> list[dict[str, Any]]:
        """Messages (text/photo) successfully sent to a chat, in order, as currently stored."""
        key = str(chat_id)
        with self._lock:
            return [json.loads(json.dumps(m)) for m in self._sent if str(m["chat"]["id"]) == key]

    def all_sent(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(json.dumps(m)) for m in self._sent]

    def is_deleted(self, chat_id: int | str, message_id: int) -> bool:
        with self._lock:
            return (str(chat_id), int(message_id)) in self._deleted

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by getUpdates (or not yet delivered)."""
        with self._lock:
            return list(self._updates)

    def file_bytes(self, file_id: str) -> bytes:
        with self._lock:
            return self._files[file_id].data

    def commands(self, scope: dict[str, Any] | None = None, language_code: str = "") -> list[Any]:
        with self._lock:
            return list(self._commands.get((self._scope_key(scope), language_code), []))

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Poll `predicate` (from any loop) until true; TimeoutError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            await asyncio.sleep(0.01)

    def wait_for_sync(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Blocking variant for sync tests (server started with `start_in_thread`)."""
        if self._thread is None or threading.current_thread() is self._thread:
            raise RuntimeError("wait_for_sync needs start_in_thread() and another thread")
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"condition not met within {timeout} s")
                self._cond.wait(min(left, 0.05))

    # ------------------------------------------------------------------ failure injection
    def block_chat(self, chat_id: int | str) -> None:
        """Sends to this chat answer 403 "bot was blocked by the user"."""
        with self._lock:
            self._blocked.add(str(chat_id))

    def unblock_chat(self, chat_id: int | str) -> None:
        with self._lock:
            self._blocked.discard(str(chat_id))

    def migrate_chat(self, old: int, new: int | None = None) -> int:
        """Upgrade group `old` to a supergroup, as Telegram does when a group grows or gets a
        public link: it gets a new id (-100…); sends to the old id answer 400 "group chat was
        upgraded to a supergroup chat" with `parameters.migrate_to_chat_id`. Returns the new
        id; `migration_updates` gives the two service messages the bot receives."""
        new = new if new is not None else int(f"-100{abs(old)}")
        with self._lock:
            title = self._chats.get(str(old), {}).get("title") or f"Group {abs(old)}"
            self._migrated[str(old)] = new
            self._chats[str(new)] = {"id": new, "title": title, "type": "supergroup"}
        return new

    def migration_updates(self, old: int, new: int, user_id: int) -> list[dict[str, Any]]:
        """The service messages of an upgrade: in the old group, by the member who upgraded
        it, `migrate_to_chat_id`; in the supergroup, by Telegram's anonymous admin bot (with
        the supergroup as `sender_chat`), `migrate_from_chat_id`."""
        with self._lock:
            title = self._chats.get(str(new), {}).get("title") or f"Group {abs(old)}"
            group = {"id": old, "title": title, "type": "group"}
            supergroup = {"id": new, "title": title, "type": "supergroup"}
            now = int(time.time())
            first = self._next_message_id
            self._next_message_id += 1
        anonymous = {
            "id": 1087968824,
            "is_bot": True,
            "first_name": "Group",
            "username": "GroupAnonymousBot",
        }
        return [
            {
                "message": {
                    "message_id": first,
                    "from": self.user(user_id),
                    "chat": group,
                    "date": now,
                    "migrate_to_chat_id": new,
                }
            },
            {
                "message": {
                    "message_id": 1,
                    "from": anonymous,
                    "sender_chat": supergroup,
                    "chat": supergroup,
                    "date": now,
                    "migrate_from_chat_id": old,
                }
            },
        ]

    def fail_next(self, n: int = 1, status: int = 502, description: str | None = None) -> None:
        """The next `n` send calls fail with `status`."""
        desc = description or HTTP_DESCRIPTIONS.get(status, f"Error {status}")
        with self._lock:
            self._fail_queue.extend([(status, desc)] * n)

    # ------------------------------------------------------------------ update injection
    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates; assigns `update_id` unless given.  Returns it."""
        with self._lock:
            if "update_id" not in update:
                update = {"update_id": self._next_update_id, **update}
            self._next_update_id = max(self._next_update_id, int(update["update_id"])) + 1
            self._updates.append(update)
            self._cond.notify_all()
        self._wake_pollers()
        return update

    def push_updates(self, updates: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.push_update(u) for u in updates]

    def user(
        self,
        user_id: int,
        first_name: str = "Warga",
        language_code: str | None = "id",
        username: str | None = None,
        last_name: str | None = None,
    ) -> dict[str, Any]:
        """A realistic `User` object."""
        out: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            out["last_name"] = last_name
        if username:
            out["username"] = username
        if language_code:
            out["language_code"] = language_code
        return out

    def message_update(
        self,
        user_id: int,
        *,
        first_name: str = "Warga",
        language_code: str | None = "id",
        username: str | None = None,
        chat_id: int | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
        **content: Any,
    ) -> dict[str, Any]:
        """A `message` update from a user; `content` holds text/location/photo/... fields."""
        sender = self.user(user_id, first_name, language_code, username)
        if chat_id is None:
            chat_id = user_id if chat_type == "private" else -(10**9 + user_id)
        if chat_type == "private":
            chat = {k: v for k, v in sender.items() if k in ("id", "first_name", "username")}
            chat["id"] = chat_id
        else:
            chat = {"id": chat_id, "title": chat_title or f"Group {abs(chat_id)}"}
        chat["type"] = chat_type
        with self._lock:
            self._chats[str(chat_id)] = chat
            message_id = self._next_message_id
            self._next_message_id += 1
            msg = {
                "message_id": message_id,
                "from": sender,
                "chat": chat,
                "date": int(time.time()),
                **content,
            }
            self._messages[(str(chat_id), message_id)] = msg
        return {"message": msg}

    def text_update(self, user_id: int, text: str, **kw: Any) -> dict[str, Any]:
        """A text message (a command is text starting with "/": gets a bot_command entity)."""
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            length = len(text.split()[0]) if text.split() else 1
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return self.message_update(user_id, **content, **kw)

    def location_update(self, user_id: int, lat: float, lon: float, **kw: Any) -> dict[str, Any]:
        return self.message_update(user_id, location={"latitude": lat, "longitude": lon}, **kw)

    def photo_update(
        self, user_id: int, image_bytes: bytes, caption: str | None = None, **kw: Any
    ) -> dict[str, Any]:
        """A photo message; the file is registered for getFile and download."""
        content: dict[str, Any] = {"photo": self._register_photo(image_bytes, strict=False)}
        if caption is not None:
            content["caption"] = caption
        return self.message_update(user_id, **content, **kw)

    def callback_update(
        self,
        user_id: int,
        data: str,
        message_id: int | None = None,
        *,
        chat_id: int | None = None,
        first_name: str = "Warga",
        language_code: str | None = "id",
    ) -> dict[str, Any]:
        """A button press on a bot message (default: the last bot message with a keyboard)."""
        chat_key = str(chat_id if chat_id is not None else user_id)
        with self._lock:
            msg: dict[str, Any] | None = None
            if message_id is not None:
                msg = self._messages.get((chat_key, message_id))
            else:
                for m in reversed(self._sent):
                    if str(m["chat"]["id"]) == chat_key and "reply_markup" in m:
                        msg = m
                        break
            if msg is None:
                msg = {
                    "message_id": message_id or 0,
                    "from": self.bot_user,
                    "chat": self._chat(chat_key),
                    "date": int(time.time()),
                    "text": "",
                }
            query_id = str(secrets.randbits(62))
            query = {
                "id": query_id,
                "from": self.user(user_id, first_name, language_code),
                "message": json.loads(json.dumps(msg)),
                "chat_instance": str(abs(hash(chat_key)) % 10**18),
                "data": data,
            }
            self._callbacks[query_id] = query
        return {"callback_query": query}

    # ------------------------------------------------------------------ webhook helper
    async def deliver_webhook(
        self, url: str, update: dict[str, Any], secret_token: str | None = None
    ) -> int:
        """POST an update to `url` like Telegram does; returns the HTTP status."""
        if "update_id" not in update:
            with self._lock:
                update = {"update_id": self._next_update_id, **update}
                self._next_update_id += 1
        headers = {"Content-Type": "application/json"}
        if secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret_token
        async with (
            ClientSession(timeout=ClientTimeout(total=10)) as session,
            session.post(url, data=json.dumps(update), headers=headers) as resp,
        ):
            await resp.read()
            return resp.status

    def deliver_to(self, urls: list[str], secret_token: str | None = None) -> None:
        """Be Telegram in webhook mode behind a load balancer: updates pushed (and those
        queued) are POSTed one at a time, in order, to `urls` in turn (one per bot process),
        with the secret the bot set.  One that is not answered 200 is offered to the next
        URL, like Telegram retrying.  Call after `start`."""
        with self._lock:
            self.webhook_targets = list(urls)
            self._webhook_secret = secret_token
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._start_delivery)

    def _start_delivery(self) -> None:
        if self._delivery is None or self._delivery.done():
            self._delivery_wake = asyncio.Event()
            self._delivery = asyncio.get_running_loop().create_task(self._deliver_loop())

    async def _deliver_loop(self) -> None:
        assert self._delivery_wake is not None
        turn = 0
        async with ClientSession(timeout=ClientTimeout(total=10)) as session:
            while not self._closing:
                with self._lock:
                    update = self._updates[0] if self._updates else None
                    targets = list(self.webhook_targets)
                    secret = self._webhook_secret or self.webhook.get("secret_token")
                if update is None or not targets:
                    self._delivery_wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._delivery_wake.wait(), timeout=0.5)
                    continue
                url = targets[turn % len(targets)]
                turn += 1
                headers = {"Content-Type": "application/json"}
                if secret:
                    headers["X-Telegram-Bot-Api-Secret-Token"] = secret
                try:
                    async with session.post(url, data=json.dumps(update), headers=headers) as r:
                        await r.read()
                        ok = r.status == 200
                except Exception:
                    ok = False
                if not ok:
                    await asyncio.sleep(0.05)
                    continue
                with self._lock:
                    if self._updates and self._updates[0] is update:
                        self._updates.pop(0)
                    self.delivered.append((url, int(update["update_id"])))
                    self._cond.notify_all()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> FakeBotAPI:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_post("/_fake/updates", self._ctl_updates)
        app.router.add_post("/_fake/text", self._ctl_text)
        app.router.add_get("/_fake/stats", self._ctl_stats)
        app.router.add_get("/_fake/sent", self._ctl_sent)
        app.router.add_get("/_fake/refused", self._ctl_refused)
        app.router.add_post("/_fake/reset", self._ctl_reset)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._loop = asyncio.get_running_loop()
        return self

    async def close(self) -> None:
        self._closing = True
        if self._delivery is not None:
            self._delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._delivery
        for fut in list(self._pollers):
            if not fut.done():
                fut.set_result(None)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start_in_thread(self) -> FakeBotAPI:
        """Run the server in its own loop in a daemon thread; returns once it listens."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.close())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-bot-api", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        """Stop a server started with `start_in_thread`."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None

    def run_coro(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the server's loop from another thread (thread mode)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # ------------------------------------------------------------------ HTTP plumbing
    def _wake_pollers(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def wake() -> None:
            for fut in list(self._pollers):
                if not fut.done():
                    fut.set_result(None)
            if self._delivery_wake is not None:
                self._delivery_wake.set()

        try:
            loop.call_soon_threadsafe(wake)
        except RuntimeError:  # loop closed meanwhile
            pass

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, bytes] = {}
        ctype = request.content_type
        if request.method == "POST" and request.can_read_body:
            if ctype == "application/json":
                body = await request.json()
                if not isinstance(body, dict):
                    raise bad_request("invalid JSON body")
                params.update(body)
            elif ctype == "multipart/form-data":
                reader = await request.multipart()
                async for part in reader:
                    if not isinstance(part, BodyPartReader) or part.name is None:
                        continue
                    if part.filename is not None:
                        files[part.name] = bytes(await part.read())
                    else:
                        params[part.name] = await part.text()
            else:
                params.update(await request.post())
        for key, value in list(params.items()):
            if key in JSON_PARAMS and isinstance(value, str):
                try:
                    params[key] = json.loads(value)
                except ValueError as exc:
                    raise bad_request(f"can't parse {key} JSON object") from exc
        for key, value in list(params.items()):
            if isinstance(value, str) and value.startswith("attach://"):
                name = value[len("attach://") :]
                if name in files:
                    params[key] = files.pop(name)
        for key, data in files.items():  # direct multipart upload, e.g. photo=<file>
            params[key] = data
        return params

    @staticmethod
    def _recordable(params: dict[str, Any]) -> dict[str, Any]:
        return {k: (f"<{len(v)} bytes>" if isinstance(v, bytes) else v) for k, v in params.items()}

    async def _handle_method(self, request: web.Request) -> web.Response:
        method_raw = request.match_info["method"]
        method = _CANONICAL.get(method_raw.lower(), method_raw)
        params: dict[str, Any] = {}
        status = 200
        started = time.time()
        with self._lock:
            self._in_flight[method] += 1
            self._cond.notify_all()
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            params = await self._read_params(request)
            if self.delay:
                await asyncio.sleep(self.delay)
            handler = _HANDLERS.get(method.lower())
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            result = await handler(self, params)
            body: dict[str, Any] = {"ok": True, "result": result}
            if method == "setWebhook":
                body["description"] = (
                    "Webhook was set" if params.get("url") else ("Webhook was deleted")
                )
        except ApiError as err:
            status, body = err.status, err.body()
        chat = params.get("chat_id")
        with self._lock:
            self._in_flight[method] -= 1
            self._calls.append(
                Call(
                    method,
                    self._recordable(params),
                    started,
                    None if chat is None else str(chat),
                    status,
                )
            )
            self._cond.notify_all()
        return web.json_response(body, status=status)

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        with self._lock:
            rec = self._file_paths.get(request.match_info["path"])
        if rec is None:
            return web.json_response(ApiError(404, "Not Found").body(), status=404)
        return web.Response(body=rec.data, content_type="application/octet-stream")

    # ------------------------------------------------------------------ control routes
    async def _ctl_updates(self, request: web.Request) -> web.Response:
        body = await request.json()
        items = body if isinstance(body, list) else [body]
        return web.json_response([self.push_update(u) for u in items])

    async def _ctl_text(self, request: web.Request) -> web.Response:
        body = await request.json()
        items = body if isinstance(body, list) else [body]
        return web.json_response([self.push_update(self.text_update(**kw)) for kw in items])

    async def _ctl_stats(self, request: web.Request) -> web.Response:
        with self._lock:
            if request.query.get("light"):  # counters only (cheap to poll during a run)
                return web.json_response(self.stats.counters())
            out = self.stats.as_dict()
            counts: dict[str, int] = defaultdict(int)
            for c in self._calls:
                counts[c.method] += 1
            out["calls"] = dict(counts)
            out["pending_updates"] = len(self._updates)
        return web.json_response(out)

    async def _ctl_refused(self, request: web.Request) -> web.Response:
        """Calls answered with an error: method, chat, status, when, and the paid flag."""
        with self._lock:
            out = [
                {
                    "method": c.method,
                    "chat_id": c.chat_id,
                    "status": c.status,
                    "at": c.at,
                    "paid": _flag(c.params, "allow_paid_broadcast"),
                }
                for c in self._calls
                if c.status != 200
            ]
        return web.json_response(out)

    async def _ctl_sent(self, request: web.Request) -> web.Response:
        chat = request.query.get("chat_id")
        return web.json_response(self.sent_to(chat) if chat else self.all_sent())

    async def _ctl_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    # ------------------------------------------------------------------ helpers for methods
    def _chat(self, chat_key: str) -> dict[str, Any]:
        chat = self._chats.get(chat_key)
        if chat is not None:
            return chat
        if self.strict_chats or not re.fullmatch(r"-?\d+", chat_key):
            raise bad_request("chat not found")
        cid = int(chat_key)
        if cid > 0:
            return {"id": cid, "first_name": f"User {cid}", "type": "private"}
        return {"id": cid, "title": f"Group {abs(cid)}", "type": "group"}

    def _check_send(self, method: str, chat_key: str, paid: bool = False) -> None:
        """Migrated group, blocked chat, injected failures and rate limits, in that order
        (lock held). A paid send (allow_paid_broadcast) is held to the paid lane's rate
        instead of the free one, and to the per-chat rate like any other."""
        if chat_key in self._migrated:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self._migrated[chat_key]},
            )
        if chat_key in self._blocked and method in BLOCKABLE_METHODS:
            self.stats.n_403 += 1
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if method not in SEND_METHODS:
            return
        if self._fail_queue:
            status, desc = self._fail_queue.popleft()
            self.stats.n_injected += 1
            raise ApiError(status, desc)
        now = time.monotonic()
        wait = 0
        lane, rate = (
            (self._paid_times, self.rate_paid) if paid else (self._global_times, self.rate_global)
        )
        if rate:
            wait = _Window(rate).retry_after(lane, now)
        if self.rate_per_chat:
            times = self._chat_times[chat_key]
            wait = max(wait, _Window(self.rate_per_chat).retry_after(times, now))
        if wait:
            self.stats.n_429 += 1
            raise ApiError(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
        lane.append(now)
        self._chat_times[chat_key].append(now)
        if paid:
            self.stats.paid_total += 1

    def _validate_markup(self, markup: Any) -> None:
        if markup is None:
            return
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is None:
            return
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_request(
                'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array'
            )
        for row in rows:
            for button in row:
                if not isinstance(button, dict):
                    raise bad_request("can't parse inline keyboard button")
                if not button.get("text"):
                    raise bad_request("BUTTON_TEXT_INVALID")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise bad_request("BUTTON_DATA_INVALID")
                if not BUTTON_KINDS & button.keys():
                    raise bad_request("BUTTON_TYPE_INVALID")

    def _store_sent(self, method: str, chat_key: str, content: dict[str, Any]) -> dict[str, Any]:
        msg = {
            "message_id": self._next_message_id,
            "from": self.bot_user,
            "chat": self._chat(chat_key),
            "date": int(time.time()),
            **content,
        }
        self._next_message_id += 1
        self._messages[(chat_key, msg["message_id"])] = msg
        self._sent.append(msg)
        self.stats.sent_total += 1
        if self.stats.sent_total % 2000 == 0:
            # What is stored lives to the end: keep it out of the garbage collector's full
            # passes, which at 100,000 messages stall the server long enough to bunch requests.
            gc.freeze()
        self.stats.send_times[chat_key].append(time.time())
        return msg

    def _register_photo(self, data: bytes, *, strict: bool) -> list[dict[str, Any]]:
        size = _image_size(data)
        if size is None:
            if strict:
                raise bad_request("IMAGE_PROCESS_FAILED")
            variants = [(data, 0, 0)]
        else:
            w, h = size
            variants = [_thumbnail(data, s) for s in PHOTO_SIDES if s < max(w, h)]
            variants.append((data, w, h))
        sizes: list[dict[str, Any]] = []
        for blob, w, h in variants:
            rec = self._register_file(blob, "photos", ".jpg")
            rec.width, rec.height = w or 1280, h or 960
            sizes.append(
                {
                    "file_id": rec.file_id,
                    "file_unique_id": rec.file_unique_id,
                    "file_size": len(blob),
                    "width": rec.width,
                    "height": rec.height,
                }
            )
        with self._lock:
            for s in sizes:
                self._photo_sets[s["file_id"]] = sizes
        return sizes

    def _register_file(self, data: bytes, folder: str, suffix: str) -> FileRecord:
        with self._lock:
            n = len(self._files)
            rec = FileRecord(
                file_id="AgACAgUAAxkBAAI" + secrets.token_urlsafe(24),
                file_unique_id="AQAD" + secrets.token_urlsafe(8),
                data=data,
                file_path=f"{folder}/file_{n}{suffix}",
            )
            self._files[rec.file_id] = rec
            self._file_paths[rec.file_path] = rec
        return rec

    @staticmethod
    def _scope_key(scope: Any) -> str:
        return json.dumps(scope or {"type": "default"}, sort_keys=True)

    def _find_own_message(self, params: dict[str, Any], what: str) -> dict[str, Any]:
        if "inline_message_id" in params:
            raise bad_request("inline messages are not supported by the fake")
        key = (str(params.get("chat_id")), _int(params, "message_id"))
        msg = self._messages.get(key)
        if msg is None or key in self._deleted:
            raise bad_request(f"message to {what} not found")
        if msg["from"].get("id") != self.bot_user["id"]:
            raise bad_request(f"message can't be {what}ed")
        return msg


def _int(params: dict[str, Any], key: str, default: int | None = None) -> int:
    value = params.get(key, default)
    if value is None:
        raise bad_request(f"{key} is empty")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise bad_request(f"invalid {key} specified") from exc


def _flag(params: dict[str, Any], key: str) -> bool:
    """A Boolean parameter as JSON (true) or form data ("true")."""
    value = params.get(key)
    return value is True or str(value).lower() in ("true", "1")


def _text_len(text: str) -> int:
    """Length in UTF-16 code units, like Telegram counts."""
    return len(text.encode("utf-16-le")) // 2


# ---------------------------------------------------------------------- method handlers
async def _get_me(api: FakeBotAPI, p: dict[str, Any]) -> Any:
    return {
        **api.bot_user,
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }


async def _get_updates(api: FakeBotAPI, p: dict[str, Any]) -> Any:
    offset = int(p["offset"]) if p.get("offset") not in (None, "") else None
    limit = min(max(int(p.get("limit") or 100), 1), 100)
    timeout = max(float(p.get("timeout") or 0), 0.0)
    if "allowed_updates" in p and p["allowed_updates"] is not None:
        api._allowed_updates = list(p["allowed_updates"])
    if api.webhook.get("url"):
        raise ApiError(
            409,
            "Conflict: can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first",
        )
    # a newer getUpdates terminates an older pending one, like Telegram
    if api._current_poll is not None and not api._current_poll.done():
        api._current_poll.set_exception(
            ApiError(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            )
        )
    me: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    api._current_poll = me
    deadline = time.monotonic() + timeout
    while True:
        with api._lock:
            if offset is not None:
                if offset < 0:
                    api._updates = api._updates[offset:]
                else:
                    api._updates = [u for u in api._updates if u["update_id"] >= offset]
            allowed = api._allowed_updates
            if allowed:
                api._updates = [u for u in api._updates if _update_type(u) in allowed]
            batch = api._updates[:limit]
        left = deadline - time.monotonic()
        if batch or left <= 0 or api._closing:
            break
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        api._pollers.add(waiter)
        try:
            done, _ = await asyncio.wait(
                {waiter, me}, timeout=left, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            api._pollers.discard(waiter)
        if me in done:
            me.result()  # raises the conflict
    if api._current_poll is me:
        api._current_poll = None
    if me.done():
        me.result()  # a newer request took over meanwhile: answer 409 like Telegram
    me.cancel()
    return json.loads(json.dumps(batch))


def _update_type(update: dict[str, Any]) -> str:
    return next((k for k in update if k != "update_id"), "")


async def _set_webhook(api: FakeBotAPI, p: dict[str, Any]) -> Any:
    url = p.get("url") or ""
    if url and not re.match(r"^https?://", url):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    with api._lock:
        if str(p.get("drop_pending_updates", "")).lower() in ("true", "1"):
            api._updates.clear()
        api.webhook = {
            "url": url,
            "secret_token": p.get("secret_token"),
            "max_connections": int(p.get("max_connections") or 40),
        }
        if p.get("allowed_updates") is not None:
            api._allowed_updates = list(p["allowed_updates"])
    return True


async def _delete_webhook(api: FakeBotAPI, p: dict[str, Any]) -> Any:
    with api._lock:
        if str(p.get("drop_pending_updates", "")).lower() in ("true", "1"):
            api._updates.clear()
        api.webhook = {}
    return True


async def _get_webhook_info(api: FakeBotAPI, p: dict[str, Any]) -> Any:
    with api._lock:
        info: dict[str, Any] = {
            "url": api.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(api._updates),
        }
        if api.webhook.get("url"):
            info["max_connections"] = api.webhook["max_connections"]
            info["ip_address"] = "127.0.0.1"
            if api._allowed_updates:
                info["allowed_updates"] = api._allowed_updates
    return info


async def _send_message(api: FakeBotAPI, p: dict[str, Any]) -> Any:
    chat_key = str(p.get("chat_id", ""))
    if not chat_key:
        raise bad_request("chat_id is empty")
    text = p.get("text")
    if text is None or not str(text).strip():
        raise bad_request("message text is empty")
    if _text_len(str(text)) > 4096:
        raise bad_request("message is too long")
    api._validate_markup(p.get("reply_markup"))
    with api._lock:
        api._chat(chat_key)
        api._check_send("sendMessage", chat_key, _flag(p, "allow_paid_broadcast"))
        content: dict[str, Any] = {"text": str(text)}
        if p.get("entities"):
            content["entities"] = p["entities"]
        if isinstance(p.get("reply_markup"), dict) and "inline_keyboard" in p["reply_markup"]:
            content["reply_markup"] = p["reply_markup"]
        return api._store_sent("sendMessage", chat_key, content)


async def _send_photo(api: FakeBotAPI, p: dict[str, Any]) -> Any:
    chat_key = str(p.get("chat_id", ""))
    if not chat_key:
        raise bad_request("chat_id is empty")
    photo: Any = p.get("photo")
    caption = p.get("caption")
    if caption is not None and _text_len(str(caption)) > 1024:
        raise bad_request("message caption is too long")
    api._validate_markup(p.get("reply_markup"))
    with api._lock:
        api._chat(chat_key)
        sizes: list[dict[str, Any]] | None = None
        if isinstance(photo, bytes):
            if _image_size(photo) is None:
                raise bad_request("IMAGE_PROCESS_FAILED")
        elif isinstance(photo, str) and str(photo) in api._photo_sets:
            sizes = api._photo_sets[photo]
        elif isinstance(photo, str) and re.match(r"^https?://", photo):
            sizes = api._register_photo(b"", strict=False)
        else:
            raise bad_request("wrong file identifier/HTTP URL specified")
        api._check_send("sendPhoto", chat_key, _flag(p, "allow_paid_broadcast"))
        if sizes is None:
            assert isinstance(photo, bytes)
            sizes = api._register_photo(photo, strict=True)
        content: dict[str, Any] = {"photo": sizes}
        if caption:
            content["caption"] = str(caption)
        if isinstance(p.get("reply_markup"), dict) and "inline_keyboard" in p["reply_markup"]:
            content["reply_markup"] = p["reply_markup"]
        return api._store_sent("sendPhoto", chat_key, content)


async def _edit_message_text(api: FakeBotAPI, p: dict[str, Any]) -> Any:
    text = p.get("text")
    if text is None or not str(text).strip():
        raise bad_request("message text is empty")
    if _text_len(str(text)) > 4096:
        raise bad_request("MESSAGE_TOO_LONG")
    markup = p.get("reply_markup")
    api._validate_markup(markup)
    with api._lock:
        msg = api._find_own_message(p, "edit")
        if "text" not in msg:
            raise bad_request("there is no text in the message to edit")
        if msg["text"] == text and msg.get("reply_markup") == markup:
            raise bad_request(
                "message is not modified: specified new message content and reply markup "
                "are exactly the same as a current content and reply markup of the message"
            )
        msg["text"] = str(text)
        if markup and "inline_keyboard" in markup:
            msg["reply_markup"] = markup
        else:
            msg.pop("reply_markup", None)
        msg["edit_date"] = int(time.time())
        return json.loads(json.dumps(msg))


async def _edit_message_caption(api: FakeBotAPI, p: dict[str, Any]) -> Any:
    caption = str(p.get("caption") or "")
    if _text_len(caption) > 1024:
        raise bad_request("MESSAGE_CAPTION_TOO_LONG")
    markup = p.get("reply_markup")
    api._validate_markup(markup)
    with api._lock:
        msg = api._find_own_message(p, "edit")
        if "text" in msg:
            raise bad_request("there is no caption in the message to edit")
        if msg.get("caption", "") == caption and msg.get("reply_markup") == markup:
            raise bad_request(
                "message is not modified: specified new message content and reply markup "
                "are exactly the same as a current content and reply markup of the message"
            )
        if caption:
            msg["caption"] = caption
        else:
            msg.pop("caption", None)
        if markup and "inline_keyboard" in markup:
            msg["reply_markup"] = markup
        else:
            msg.pop("reply_markup", None)
        msg["edit_date"] = int(time.time())
        return json.loads(json.dumps(msg))


async def _edit_message_reply_markup(api: FakeBotAPI, p: dict[str, Any]) -> Any:
    markup = p.get("reply_markup")
    api._validate_markup(markup)
    with api._lock:
        msg = api._find_own_message(p, "edit")
        if msg.get("reply_markup") == (markup or None):
            raise bad_request(
                "message is not modified: specified new message content and reply markup "
                "are exactly the same as a current content and reply markup of the message"
            )
        if markup and "inline_keyboard" in markup:
            msg["reply_markup"] = markup
        else:
            msg.pop("reply_markup", None)
        msg["edit_date"] = int(time.time())
        return json.loads(json.dumps(msg))


async def _answer_callback_query(api: FakeBotAPI, p: dict[str, Any]) -> Any:
    qid = str(p.get("callback_query_id", ""))
    with api._lock:
        if qid not in api._callbacks or qid in api.callback_answers:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        api.callback_answers[qid] = dict(p)
    return True


async def _set_my_commands(api: FakeBotAPI, p: dict[str, Any]) -> Any:
    commands = p.get("commands")
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    if len(commands) > 100:
        raise bad_request("BOT_COMMANDS_TOO_MUCH")
    for cmd in commands:
        if not isinstance(cmd, dict) or not COMMAND_RE.match(str(cmd.get("command", ""))):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(cmd.get("description", ""))) <= 256:
            raise bad_request("command description must be 1-256 characters")
    with api._lock:
        key = (api._scope_key(p.get("scope")), str(p.get("language_code") or ""))
        api._commands[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
    return True


async def _get_my_commands(api: FakeBotAPI, p: dict[str, Any]) -> Any:
    return api.commands(p.get("scope"), str(p.get("language_code") or ""))


async def _delete_my_commands(api: FakeBotAPI, p: dict[str, Any]) -> Any:
    with api._lock:
        api._commands.pop((api._scope_key(p.get("scope")), str(p.get("language_code") or "")), None)
    return True


async def _send_chat_action(api: FakeBotAPI, p: dict[str, Any]) -> Any:
    chat_key = str(p.get("chat_id", ""))
    action = str(p.get("action", ""))
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    with api._lock:
        api._chat(chat_key)
        api._check_send("sendChatAction", chat_key)
        api.chat_actions.append((chat_key, action))
    return True


async def _delete_message(api: FakeBotAPI, p: dict[str, Any]) -> Any:
    key = (str(p.get("chat_id")), _int(p, "message_id"))
    with api._lock:
        if key not in api._messages or key in api._deleted:
            raise bad_request("message to delete not found")
        api._deleted.add(key)
    return True


async def _get_file(api: FakeBotAPI, p: dict[str, Any]) -> Any:
    with api._lock:
        rec = api._files.get(str(p.get("file_id", "")))
        if rec is None:
            raise bad_request("invalid file_id")
        return {
            "file_id": rec.file_id,
            "file_unique_id": rec.file_unique_id,
            "file_size": len(rec.data),
            "file_path": rec.file_path,
        }


async def _log_out(api: FakeBotAPI, p: dict[str, Any]) -> Any:
    return True


_HANDLERS: dict[str, Callable[[FakeBotAPI, dict[str, Any]], Any]] = {
    name.lower(): fn
    for name, fn in {
        "getMe": _get_me,
        "getUpdates": _get_updates,
        "setWebhook": _set_webhook,
        "deleteWebhook": _delete_webhook,
        "getWebhookInfo": _get_webhook_info,
        "sendMessage": _send_message,
        "sendPhoto": _send_photo,
        "editMessageText": _edit_message_text,
        "editMessageCaption": _edit_message_caption,
        "editMessageReplyMarkup": _edit_message_reply_markup,
        "answerCallbackQuery": _answer_callback_query,
        "setMyCommands": _set_my_commands,
        "getMyCommands": _get_my_commands,
        "deleteMyCommands": _delete_my_commands,
        "sendChatAction": _send_chat_action,
        "deleteMessage": _delete_message,
        "getFile": _get_file,
        "close": _log_out,
        "logOut": _log_out,
    }.items()
}
_CANONICAL = {
    n.lower(): n
    for n in (
        "getMe getUpdates setWebhook deleteWebhook getWebhookInfo sendMessage sendPhoto "
        "editMessageText editMessageCaption editMessageReplyMarkup answerCallbackQuery "
        "setMyCommands getMyCommands "
        "deleteMyCommands sendChatAction deleteMessage getFile close logOut"
    ).split()
}


# ---------------------------------------------------------------------- process mode
async def _serve(args: argparse.Namespace) -> None:
    api = FakeBotAPI(
        args.token,
        rate_global=args.rate_global,
        rate_per_chat=args.rate_per_chat,
        rate_paid=args.rate_paid,
        delay=args.delay,
        port=args.port,
    )
    async with api:
        print(api.base_url, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Telegram Bot API server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--rate-global", type=float, default=0)
    parser.add_argument("--rate-per-chat", type=float, default=0)
    parser.add_argument("--rate-paid", type=float, default=PAID_RATE)
    parser.add_argument("--delay", type=float, default=0)
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
