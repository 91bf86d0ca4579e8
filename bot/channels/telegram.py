"""Telegram adapter (aiogram 3): long polling or webhook in, Bot API calls out.

In: every update is stored in the inbox (one transaction per getUpdates batch) *before* the
next getUpdates call confirms it (offset), or before the webhook answers 200.  Out: `Reply`
→ sendMessage / sendPhoto with an inline keyboard, or a reply keyboard with
`request_location`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiogram import Bot
from aiogram import methods as tg
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import GetUpdates
from aiogram.methods.base import Response, TelegramMethod
from aiogram.types import (
    BufferedInputFile,
    FSInputFile,
    Update,
)
from aiohttp import ClientError, web

from bot.channels import tg_live
from bot.channels.base import InboxSink, OutboundMessage, PaidLane, RateLimits, SendResult
from bot.config import Settings
from bot.http import read_body
from bot.media import MediaError, MediaStore
from bot.runtime import retry_delay
from handlers import help as helptext
from handlers.events import MAX_TEXT, Choice, Inbound, Reply

log = logging.getLogger(__name__)

CALLBACK_MAX_BYTES = 64
MAX_BODY = 1_000_000
ALLOWED_UPDATES = ["message", "callback_query"]


def command_menu(gettext: Any) -> list[tuple[str, str]]:
    """The citizens' commands in Telegram's menu, described in one language."""
    return helptext.menu(gettext, {helptext.CITIZEN})


def keyboard_for(reply: Reply) -> dict[str, Any] | None:
    """The Bot API `reply_markup` for a reply, as JSON: an inline keyboard for choices, a
    reply keyboard for a location request, ForceReply for an answer asked in place. (Plain
    dicts: the send path posts them as they are; tests check them against aiogram's models.)"""
    if reply.force_reply:
        return {"force_reply": True}
    if reply.ask_location:
        button = {"text": reply.location_label or "📍", "request_location": True}
        return {"keyboard": [[button]], "resize_keyboard": True, "one_time_keyboard": True}
    if reply.choices:
        return {"inline_keyboard": _rows(reply.choices)}
    if reply.remove_keyboard:
        return {"remove_keyboard": True}
    return None


def _rows(choices: tuple[Choice, ...]) -> list[list[dict[str, str]]]:
    buttons = [{"text": c.label[:64], "callback_data": _callback(c.id)} for c in choices]
    two_up = len(choices) > 3 and all(len(c.label) <= 22 for c in choices)
    width = 2 if two_up else 1
    return [buttons[i : i + width] for i in range(0, len(buttons), width)]


def _callback(data: str) -> str:
    raw = data.encode("utf-8")
    if len(raw) <= CALLBACK_MAX_BYTES:
        return data
    return raw[:CALLBACK_MAX_BYTES].decode("utf-8", errors="ignore")


def pinned_response_types() -> tuple[type, ...]:
    """Strong references to the `Response[T]` classes aiogram validates answers with.

    pydantic caches parametrised generics only weakly: after a garbage collection aiogram's
    next `Response[Message]` builds the class and its schema again, about 3 ms per call on
    these machines (most of a send).  Whoever holds these keeps pydantic's cache warm.
    """
    methods = (
        tg.AnswerCallbackQuery,
        tg.DeleteWebhook,
        tg.GetFile,
        tg.GetMe,
        tg.GetUpdates,
        tg.SendMessage,
        tg.SendPhoto,
        tg.SetMyCommands,
        tg.SetWebhook,
    )
    return tuple(Response[m.__returning__] for m in methods)  # type: ignore[name-defined]


class UnexpectedAnswer(TelegramAPIError):
    """An error answer aiogram has no class for (a 429 without `retry_after`, a 406 …), with
    its HTTP status, so the transport can tell temporary from permanent."""

    def __init__(self, method: TelegramMethod[Any], message: str, status_code: int) -> None:
        super().__init__(method=method, message=message)
        self.status_code = status_code


PAID_BROADCAST_STARS = 0.1  # a message sent with allow_paid_broadcast (Bot API 7.11)


def paid_lane(settings: Settings) -> PaidLane | None:
    """Paid broadcasts for warnings, when switched on (off by default: they cost Stars)."""
    if not settings.telegram_paid_broadcast:
        return None
    return PaidLane(
        limits=RateLimits(settings.telegram_paid_rate, settings.telegram_rate_per_chat),
        price=PAID_BROADCAST_STARS,
        budget=settings.telegram_paid_stars_budget,
    )


class JsonSession(AiohttpSession):
    """aiogram's aiohttp session with two changes on the hot path (measured in bench/inbound.py):

    - a call without files is posted as one JSON object (the Bot API takes JSON); aiogram
      builds multipart form data for every call, which costs both sides more;
    - `post_json` for the hottest calls: JSON in, JSON out, no aiogram model (getUpdates'
      updates thus reach the inbox exactly as Telegram sent them).

    Values go through aiogram's own `prepare_value` (defaults, nested objects as JSON text,
    which the Bot API accepts in a JSON body too); answers through its `check_response`.
    """

    def check_response(
        self, bot: Bot, method: TelegramMethod[Any], status_code: int, content: str
    ) -> Response[Any]:
        try:
            return super().check_response(bot, method, status_code, content)
        except TelegramAPIError as exc:
            if type(exc) is TelegramAPIError:  # aiogram's catch-all: keep the status
                raise UnexpectedAnswer(method, exc.message, status_code) from exc
            raise

    async def make_request(
        self,
        bot: Bot,
        method: Any,
        timeout: int | None = None,  # noqa: ASYNC109 - aiogram's signature
    ) -> Any:
        files: dict[str, Any] = {}
        body: dict[str, Any] = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files)
            if prepared:
                body[key] = prepared
        if files:  # uploads stay multipart
            return await super().make_request(bot, method, timeout)
        status, raw = await self._post_json_body(
            bot, method.__api_method__, body, timeout, lambda: method
        )
        response = self.check_response(bot=bot, method=method, status_code=status, content=raw)
        return response.result

    async def post_json(
        self,
        bot: Bot,
        method: type[TelegramMethod[Any]],
        body: dict[str, Any],
        request_timeout: float | None = None,
    ) -> Any:
        """The hot calls (sendMessage, answerCallbackQuery, getUpdates): `body` is already Bot
        API JSON and the answer's `result` comes back as parsed JSON, with no aiogram model
        built either way (those were a third of a send's CPU). Errors still raise aiogram's
        exceptions: only then is the method model built, for `check_response`."""
        status, raw = await self._post_json_body(
            bot, method.__api_method__, body, request_timeout, lambda: method.model_validate(body)
        )
        if status == 200:
            with contextlib.suppress(ValueError):
                answer = json.loads(raw)
                if isinstance(answer, dict) and answer.get("ok") is True:
                    return answer.get("result")
        model = method.model_validate(body)
        self.check_response(bot=bot, method=model, status_code=status, content=raw)
        raise TelegramAPIError(method=model, message=raw[:200])

    async def _post_json_body(
        self,
        bot: Bot,
        api_method: str,
        body: dict[str, Any],
        request_timeout: float | None,
        method_for_errors: Callable[[], TelegramMethod[Any]],
    ) -> tuple[int, str]:
        """POST `body` as JSON; (HTTP status, answer text). Network failures raise aiogram's
        `TelegramNetworkError` (which wants the method object: built only then)."""
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=api_method)
        try:
            async with session.post(
                url,
                data=self.json_dumps(body),
                headers={"Content-Type": "application/json"},
                timeout=self.timeout if request_timeout is None else request_timeout,  # type: ignore[arg-type]
            ) as resp:
                return resp.status, await resp.text()
        except TimeoutError as exc:
            raise TelegramNetworkError(
                method=method_for_errors(), message="Request timeout error"
            ) from exc
        except ClientError as exc:
            raise TelegramNetworkError(
                method=method_for_errors(), message=str(exc) or "connection failed"
            ) from exc


ChatMoved = Callable[[str, str, str], Awaitable[None]]  # (channel, old chat id, new chat id)


def map_error(exc: Exception) -> SendResult:
    """A failed Bot API call as the sender's decision. 429, 5xx and network trouble are
    temporary (retry); another answer (400, 403, 404, 413 …) is about this message or chat and
    would be the same next time (not retried); a rejected token (401) pauses the channel: every
    send would fail until it is fixed, and nothing queued meanwhile is lost."""
    if isinstance(exc, TelegramRetryAfter):
        return SendResult(
            status="retry",
            retry_after=float(exc.retry_after),
            pause_channel=True,
            error="429 " + exc.message,
        )
    if isinstance(exc, TelegramEntityTooLarge):  # a network error by class, permanent by code
        return SendResult(status="failed", error="413 " + exc.message)
    if isinstance(exc, TelegramServerError):
        return SendResult(status="retry", error=f"5xx {exc.message}"[:300])
    if isinstance(exc, TelegramNetworkError):
        return SendResult(status="retry", error=f"network: {exc.message}"[:300])
    if isinstance(exc, ClientDecodeError):  # e.g. a proxy's HTML error page
        return SendResult(status="retry", error="the Bot API answered something unreadable")
    if isinstance(exc, TelegramUnauthorizedError):
        return SendResult(status="retry", retry_after=300.0, pause_channel=True, error="401")
    if isinstance(exc, TelegramForbiddenError):
        return SendResult(status="blocked", error="403 " + exc.message)
    if isinstance(exc, TelegramNotFound):  # chat gone
        return SendResult(status="blocked", error="404 " + exc.message)
    if isinstance(exc, TelegramBadRequest) and "chat not found" in exc.message.lower():
        return SendResult(status="blocked", error="400 " + exc.message)
    if isinstance(exc, TelegramMigrateToChat):  # moved again right after moving
        return SendResult(status="failed", error="400 " + exc.message.splitlines()[0])
    if isinstance(exc, UnexpectedAnswer):
        code = exc.status_code
        temporary = code == 429 or code >= 500
        return SendResult(status="retry" if temporary else "failed", error=f"{code} {exc.message}")
    for cls, code in _STATUS_OF.items():
        if isinstance(exc, cls):
            return SendResult(status="failed", error=f"{code} {exc.message}")
    if isinstance(exc, TimeoutError):
        return SendResult(status="retry", error="network: no answer in time")
    return SendResult(status="retry", error=f"network: {exc}"[:300])  # aiohttp ClientError


_STATUS_OF: dict[type[TelegramAPIError], int] = {
    TelegramBadRequest: 400,
    TelegramConflictError: 409,
    TelegramAPIError: 400,  # "ok" false with 200 or an answer without a body we know
}


class TelegramTransport:
    channel = "telegram"

    def __init__(
        self,
        bot: Bot,
        media: MediaStore,
        limits: RateLimits,
        *,
        on_chat_moved: ChatMoved | None = None,
        card_lookup: tg_live.CardLookup | None = None,
        paid_lane: PaidLane | None = None,
    ) -> None:
        self.bot = bot
        self.media = media
        self.limits = limits
        self.on_chat_moved = on_chat_moved
        # Group chats upgraded to supergroups (old id → new id): rows still queued for the old
        # id go to the new one without asking Telegram again.
        self.moved: dict[str, str] = {}
        self.card_lookup = card_lookup  # where an earlier queue card is (edits, tg_live.py)
        self.paid_lane = paid_lane  # paid broadcasts: a message marked `paid` goes with the flag

    async def send(self, msg: OutboundMessage) -> SendResult:
        address = self.moved.get(msg.address, msg.address)
        try:
            if msg.kind in tg_live.SPECIAL_KINDS:  # card edits and command menus
                return await tg_live.send_special(self, msg)
            try:
                return await self._send(address, msg.reply, paid=msg.paid)
            except TelegramMigrateToChat as exc:  # 400 with parameters.migrate_to_chat_id
                new = str(exc.migrate_to_chat_id)
                await self.chat_moved(address, new)
                return await self._send(new, msg.reply, paid=msg.paid)
        except (TelegramAPIError, ClientDecodeError, ClientError, TimeoutError) as exc:
            return map_error(exc)
        except (KeyError, TypeError) as exc:  # "ok" but no message in it
            return SendResult(status="failed", error=f"unexpected answer: {exc!r}"[:300])

    async def chat_moved(self, old: str, new: str) -> None:
        """Chat `old` is `new` from now on: here, and (through `on_chat_moved`) in storage."""
        self.moved[old] = new
        if self.on_chat_moved is None:
            return
        try:
            await self.on_chat_moved(self.channel, old, new)
        except Exception:  # the message still goes; the service message will try again
            log.exception("telegram: could not record that chat %s moved to %s", old, new)

    async def _send(self, address: str, reply: Reply, *, paid: bool = False) -> SendResult:
        """`paid`: a warning in the paid-broadcast lane (Bot API 7.11 `allow_paid_broadcast`:
        up to 1,000 msg/s, 0.1 Star each)."""
        markup = keyboard_for(reply)
        if reply.photo is not None:
            photo: Any
            if reply.photo.channel_file_id:
                photo = reply.photo.channel_file_id
            else:
                photo = FSInputFile(self.media.path_of(reply.photo))
            sent = await self.bot(
                tg.SendPhoto.model_validate(
                    {
                        "chat_id": address,
                        "photo": photo,
                        "caption": reply.text[:1024] or None,
                        "reply_markup": markup,
                        "allow_paid_broadcast": paid or None,
                    }
                )
            )
            return SendResult(status="sent", message_id=str(sent.message_id))
        body: dict[str, Any] = {"chat_id": address, "text": reply.text[:4096]}
        if markup is not None:
            body["reply_markup"] = markup
        if paid:
            body["allow_paid_broadcast"] = True
        result = await self.call(tg.SendMessage, body)
        return SendResult(status="sent", message_id=str(result["message_id"]))

    async def call(
        self,
        method: type[TelegramMethod[Any]],
        body: dict[str, Any],
        request_timeout: float | None = None,
    ) -> Any:
        """A Bot API call as plain JSON (see `JsonSession.post_json`): its parsed `result`."""
        session = self.bot.session
        assert isinstance(session, JsonSession), "the Telegram adapter runs on JsonSession"
        return await session.post_json(self.bot, method, body, request_timeout)


class TelegramChannel:
    name = "telegram"

    def __init__(
        self,
        settings: Settings,
        media: MediaStore,
        i18n: Any,
        known_commands: set[str],
        *,
        on_chat_moved: ChatMoved | None = None,
        card_lookup: tg_live.CardLookup | None = None,
    ) -> None:
        """`on_chat_moved(channel, old, new)`: a group chat got a new id (upgraded to a
        supergroup); whatever was linked to the old id follows it."""
        assert settings.telegram_bot_token is not None
        self.settings = settings
        self.media = media
        self.i18n = i18n
        self.known_commands = known_commands
        self.bot = Bot(
            token=settings.telegram_bot_token.get_secret_value(),
            session=JsonSession(api=TelegramAPIServer.from_base(settings.telegram_api_base)),
        )
        self.transport = TelegramTransport(
            self.bot,
            media,
            RateLimits(settings.telegram_rate_global, settings.telegram_rate_per_chat),
            on_chat_moved=on_chat_moved,
            card_lookup=card_lookup,
            paid_lane=paid_lane(settings),
        )
        self._response_types = pinned_response_types()
        self.username: str | None = None
        self._inbox: InboxSink | None = None
        self._connector: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._connected = False
        self._stop = asyncio.Event()
        self._side_tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self, inbox: InboxSink) -> None:
        """Returns at once: the bot introduces itself to the Bot API in the background, so
        a Telegram that cannot be reached (or restarts) holds up nothing else."""
        self._inbox = inbox
        self._connector = asyncio.create_task(self._connect(), name="telegram-connect")

    def status(self) -> str:
        return "up" if self._connected else "down"

    async def _connect(self) -> None:
        """`_introduce` until it succeeds, with backoff and one log line per failed attempt;
        a refusal that will not change (401 token rejected, 400/404) stops trying."""
        failures = 0
        while not self._stop.is_set():
            try:
                await self._introduce()
            except (TelegramUnauthorizedError, TelegramBadRequest, TelegramNotFound) as exc:
                log.error("telegram: the Bot API refused the bot (%s); Telegram stays off", exc)
                return
            except Exception as exc:  # network, 5xx, 429: Telegram comes back
                failures += 1
                wait = retry_delay(failures)
                why = " ".join(str(exc).split())[:200]
                log.warning("telegram: cannot reach the Bot API (%s); retry in %.1fs", why, wait)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), wait)
                continue
            self._connected = True
            return

    async def _introduce(self) -> None:
        me = await self.bot.get_me()
        self.username = (me.username or "").lower()
        log.info("telegram: connected as @%s", me.username)
        await self._set_commands()
        if self.settings.telegram_webhook_enabled:
            assert self.settings.telegram_webhook_secret is not None
            await self.bot.set_webhook(
                url=str(self.settings.telegram_webhook_url),
                secret_token=self.settings.telegram_webhook_secret.get_secret_value(),
                allowed_updates=ALLOWED_UPDATES,
            )
            log.info("telegram: webhook mode")
        else:
            await self.bot.delete_webhook(drop_pending_updates=False)
            self._poller = asyncio.create_task(self._poll())
            log.info("telegram: long polling")

    async def _set_commands(self) -> None:
        """Citizens' menu (default scope) and the queue groups' menu, in id and en; a staff
        member's own menu comes through the outbox (tg_live.py)."""
        for scope, lang, commands in tg_live.start_menus(self.i18n):
            body: dict[str, Any] = {
                "commands": [{"command": c, "description": d} for c, d in commands],
                "scope": scope,
            }
            if lang is not None:
                body["language_code"] = lang
            try:
                await self.transport.call(tg.SetMyCommands, body)
            except Exception:  # the menu is a nicety; never block start-up on it
                log.warning("telegram: setMyCommands(%s, %s) failed", scope, lang, exc_info=True)

    async def stop(self) -> None:
        self._stop.set()
        for task in (self._connector, self._poller):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self.bot.session.close()

    # --- receiving ----------------------------------------------------------------------------
    async def _poll(self) -> None:
        offset: int | None = None
        failures = 0
        timeout = self.settings.telegram_poll_timeout
        while not self._stop.is_set():
            try:
                updates = await self._get_updates(offset, timeout)
                failures = 0
            except asyncio.CancelledError:
                raise
            except TelegramUnauthorizedError:
                log.error("telegram: the bot token was rejected (401); polling stopped")
                return
            except TelegramConflictError:
                log.error("telegram: another process or a webhook is receiving updates (409)")
                await asyncio.sleep(5)
                continue
            except Exception as exc:
                failures += 1
                wait = retry_delay(failures)
                log.warning("telegram: getUpdates failed (%s); retry in %.1fs", exc, wait)
                await asyncio.sleep(wait)
                continue
            if not updates:
                continue
            items = [(str(u["update_id"]), u, _raw_sender_key(u)) for u in updates]
            assert self._inbox is not None
            # Durable before acknowledged: the next getUpdates with this offset confirms them.
            try:
                await self._inbox.accept_many(self.name, items)
            except Exception:  # not stored: don't confirm; Telegram gives them again
                failures += 1
                wait = retry_delay(failures)
                log.exception(
                    "telegram: storing %d updates failed; retry in %.1fs", len(items), wait
                )
                await asyncio.sleep(wait)
                continue
            offset = max(int(u["update_id"]) for u in updates) + 1

    async def _get_updates(self, offset: int | None, poll: int) -> list[dict[str, Any]]:
        """One long poll. The updates stay as Telegram sent them (the inbox stores them so;
        the worker builds aiogram's `Update` when it handles one): only the id is checked."""
        body: dict[str, Any] = {"timeout": poll, "allowed_updates": ALLOWED_UPDATES}
        if offset is not None:
            body["offset"] = offset
        result = await self.transport.call(GetUpdates, body, request_timeout=poll + 10)
        if not isinstance(result, list):
            raise TelegramAPIError(method=GetUpdates(), message="getUpdates: result is not a list")
        updates = [u for u in result if isinstance(u, dict) and type(u.get("update_id")) is int]
        if len(updates) != len(result):
            log.warning("telegram: %d malformed updates skipped", len(result) - len(updates))
        return updates

    def register_routes(self, app: web.Application) -> None:
        if self.settings.telegram_webhook_enabled:
            app.router.add_post(self.settings.telegram_webhook_path, self._webhook)

    async def _webhook(self, request: web.Request) -> web.Response:
        secret = self.settings.telegram_webhook_secret
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if secret is None or not hmac.compare_digest(
            given.encode(), secret.get_secret_value().encode()
        ):
            return web.Response(status=401, text="unauthorized")
        body = await read_body(request, MAX_BODY)
        try:
            data = json.loads(body)
            update = Update.model_validate(data)
        except Exception:
            return web.Response(status=400, text="bad update")
        assert self._inbox is not None
        await self._inbox.accept(self.name, str(update.update_id), data, _sender_key(update))  # type: ignore[call-arg]
        return web.Response(text="ok")

    # --- mapping in ---------------------------------------------------------------------------
    async def to_inbound(self, payload: dict[str, Any]) -> list[Inbound]:
        update = Update.model_validate(payload)
        if update.callback_query is not None:
            return await self._from_callback(update)
        msg = update.message
        if msg is not None and (msg.migrate_to_chat_id or msg.migrate_from_chat_id):
            # A group upgraded to a supergroup: the old group's last message names the new id,
            # the supergroup's first names the old one (sent by an anonymous-admin bot user).
            if msg.migrate_to_chat_id:
                old, new = msg.chat.id, msg.migrate_to_chat_id
            else:
                old, new = msg.migrate_from_chat_id or 0, msg.chat.id
            await self.transport.chat_moved(str(old), str(new))
            return []
        if msg is None or msg.from_user is None or msg.from_user.is_bot:
            return []
        user = msg.from_user
        chat_type = "private" if msg.chat.type == "private" else "group"
        base: dict[str, Any] = {
            "channel": self.name,
            "external_id": str(user.id),
            "chat_id": str(msg.chat.id),
            "chat_type": chat_type,
            "display_name": " ".join(p for p in (user.first_name, user.last_name) if p)[:128],
            "language_hint": user.language_code,
            "username": user.username or "",
            "reply_to_bot": _replies_to(msg, self.bot.id),
        }
        if msg.location is not None:
            return [
                Inbound(
                    kind="location", lat=msg.location.latitude, lon=msg.location.longitude, **base
                )
            ]
        if msg.photo:
            return [await self._photo_inbound(msg.photo, msg.caption, base)]
        if msg.document is not None and (msg.document.mime_type or "").startswith("image/"):
            return [await self._document_inbound(msg.document, base)]
        if msg.text is not None:
            text = msg.text[:MAX_TEXT]
            if text.startswith("/"):
                head, _, args = text[1:].partition(" ")
                name, _, target = head.partition("@")
                if target and self.username and target.lower() != self.username:
                    return []  # a command for another bot in a group
                return [
                    Inbound(
                        kind="command",
                        command=name.lower()[:32],
                        args=args.strip(),
                        text=text,
                        **base,
                    )
                ]
            return [Inbound(kind="text", text=text, **base)]
        if chat_type == "private":
            # Stickers, voice notes, ...: the core answers with the step's hint.
            return [Inbound(kind="text", text="", **base)]
        return []

    async def _from_callback(self, update: Update) -> list[Inbound]:
        cq = update.callback_query
        assert cq is not None
        # Always stop the button's spinner, without making the person's update wait for it.
        task = asyncio.create_task(self._answer_callback(cq.id))
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)
        msg = cq.message
        chat_id = str(msg.chat.id) if msg is not None else str(cq.from_user.id)
        chat_type: Literal["private", "group"] = (
            "private" if msg is None or msg.chat.type == "private" else "group"
        )
        return [
            Inbound(
                channel=self.name,
                external_id=str(cq.from_user.id),
                chat_id=chat_id,
                chat_type=chat_type,
                kind="choice",
                choice=(cq.data or "")[:CALLBACK_MAX_BYTES],
                display_name=cq.from_user.first_name,
                language_hint=cq.from_user.language_code,
                username=cq.from_user.username or "",
            )
        ]

    async def _answer_callback(self, query_id: str) -> None:
        with contextlib.suppress(Exception):  # an old query (after a restart) may be refused
            await self.transport.call(tg.AnswerCallbackQuery, {"callback_query_id": query_id})

    async def _photo_inbound(
        self, sizes: list[Any], caption: str | None, base: dict[str, Any]
    ) -> Inbound:
        limit = self.media.max_bytes
        fitting = [p for p in sizes if (p.file_size or 0) <= limit]
        if not fitting:
            return Inbound(kind="photo", photo_error="too_large", text=caption, **base)
        best = max(fitting, key=lambda p: (p.width * p.height, p.file_size or 0))
        return await self._fetch(best.file_id, caption, base)

    async def _document_inbound(self, doc: Any, base: dict[str, Any]) -> Inbound:
        if (doc.file_size or 0) > self.media.max_bytes:
            return Inbound(kind="photo", photo_error="too_large", **base)
        return await self._fetch(doc.file_id, None, base)

    async def _fetch(self, file_id: str, caption: str | None, base: dict[str, Any]) -> Inbound:
        try:
            file = await self.bot.get_file(file_id)
            if (file.file_size or 0) > self.media.max_bytes:
                raise MediaError("too_large")
            assert file.file_path is not None
            buf = await self.bot.download_file(file.file_path, timeout=60)
            assert buf is not None
            data = buf.read(self.media.max_bytes + 1)
            ref = await asyncio.to_thread(self.media.store_image, data, file_id)
        except MediaError as exc:
            return Inbound(kind="photo", photo_error=exc.code, text=caption, **base)
        except Exception:
            log.warning("telegram: photo download failed", exc_info=True)
            return Inbound(kind="photo", photo_error="download_failed", text=caption, **base)
        return Inbound(kind="photo", photo=ref, text=caption, **base)


def _replies_to(msg: Any, bot_id: int) -> bool:
    """The message answers one of this bot's own messages (e.g. its ForceReply question)."""
    earlier = msg.reply_to_message
    return bool(earlier and earlier.from_user and earlier.from_user.id == bot_id)


def _raw_sender_key(update: dict[str, Any]) -> str | None:
    """`_sender_key` for an update as Telegram sent it (JSON)."""
    for field in ("message", "callback_query"):
        part = update.get(field)
        if isinstance(part, dict):
            sender = part.get("from")
            if isinstance(sender, dict) and sender.get("id") is not None:
                return str(sender["id"])
    return None


def _sender_key(update: Update) -> str | None:
    if update.message is not None and update.message.from_user is not None:
        return str(update.message.from_user.id)
    if update.callback_query is not None:
        return str(update.callback_query.from_user.id)
    return None


__all__ = ["BufferedInputFile", "TelegramChannel", "TelegramTransport", "keyboard_for"]
