"""WhatsApp Cloud API channel (pywa_async for HTTP; webhook parsing and rendering are ours).

Identity (decided here, used by the core and the outbox):

- `Inbound.external_id` — who the person is: the business-scoped user id (`contacts[].user_id`,
  e.g. "ID.1234…") when Meta sends one, else the phone-number id `wa_id`.  Both are stable per
  person; the BSUID survives username-only accounts.
- `Inbound.chat_id` — where to answer (the outbox `address`): the `wa_id` when known, else the
  BSUID.  The transport sends digits as `to` and a BSUID ("XX.123…") as `recipient`.
- `Inbound.phone` — the `wa_id` (digits, international format without "+"), personal data;
  None for username-only users. The core reads a sender under it too: an account known by its
  phone number before Meta added user ids takes the user id and stays one person
  (`storage.people.PeopleRepo.link_former`).

Outside the 24-hour window a message goes as its kind's approved template
(`wa_render.template_names`: status changes and officers' cards → the status template,
warnings, announcements and admins' sensor notices → the warning template), its text flattened
into the one parameter Meta accepts; a kind without a template fails as `WINDOW_CLOSED`
(counted on /healthz). A 131047 reported later in a `failed` status is handled by
`bot/delivery.py` (the row is queued again, marked `AS_TEMPLATE`).

Graph API base URL: pywa hard-codes `https://graph.facebook.com/v{version}` as its httpx base URL,
so the httpx client we give it has a transport (`GraphBaseTransport`) that rewrites requests for
graph.facebook.com to `settings.whatsapp_api_base`.  Media downloads use the URL the Graph API
returned (lookaside.fbsbx.com in production, the fake server in tests) with the same client and
its Bearer header.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
from aiohttp import web
from pydantic import SecretStr
from pywa.errors import WhatsAppError
from pywa_async import WhatsApp
from pywa_async.api import GraphAPIAsync

from bot.channels.base import WINDOW_CLOSED, InboxSink, OutboundMessage, RateLimits, SendResult
from bot.channels.wa_render import (
    AS_TEMPLATE,
    RenderError,
    WaMessage,
    parse_more_row_id,
    render_reply,
    render_template,
    template_names,
)
from bot.channels.wa_webhook import CHANNEL, StatusCallback, WhatsAppWebhook, sender_ids
from bot.config import Settings, SettingsError
from bot.media import MediaError, MediaStore
from handlers.events import MAX_TEXT, Inbound, MediaRef
from handlers.text import N_
from storage.db import utcnow

log = logging.getLogger(__name__)

GRAPH_HOST = "graph.facebook.com"
WINDOW = timedelta(hours=24)
ALLOWED_IMAGE_MIMES = frozenset({"image/jpeg", "image/png", "image/webp"})
MEDIA_ID_TTL = timedelta(days=25)  # uploaded media live 30 days on Meta's side
RATE_MARGIN = 0.97
# Message types that need no answer: reactions to our messages, system notices (number
# changed), and the "user opened the chat" ping.
SILENT_TYPES = frozenset({"reaction", "system", "request_welcome", "ephemeral"})


class Translator(Protocol):
    def gettext(self, code: str | None, msgid: str) -> str: ...


# --------------------------------------------------------------------------- HTTP plumbing


class GraphBaseTransport(httpx.AsyncBaseTransport):
    """Send requests meant for https://graph.facebook.com to `base_url` instead."""

    def __init__(self, base_url: str, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.base = httpx.URL(base_url.rstrip("/"))
        self.inner = inner or httpx.AsyncHTTPTransport()

    def rewrite(self, url: httpx.URL) -> httpx.URL:
        if url.host != GRAPH_HOST or self.base.host == GRAPH_HOST:
            return url
        return url.copy_with(
            scheme=self.base.scheme,
            host=self.base.host,
            port=self.base.port,
            path=self.base.path.rstrip("/") + url.path,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        new_url = self.rewrite(request.url)
        if new_url != request.url:
            request.url = new_url
            request.headers["Host"] = new_url.netloc.decode("ascii")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def make_graph_client(base_url: str, timeout: float = 15.0) -> httpx.AsyncClient:
    """The httpx client handed to pywa (one per WhatsApp instance)."""
    return httpx.AsyncClient(
        transport=GraphBaseTransport(base_url),
        timeout=httpx.Timeout(timeout, connect=5.0),
    )


def make_pywa(settings: Settings, session: httpx.AsyncClient) -> WhatsApp:
    token = settings.whatsapp_token.get_secret_value() if settings.whatsapp_token else None
    return WhatsApp(
        phone_id=settings.whatsapp_phone_id,
        token=token or None,
        session=session,
        api_version=settings.whatsapp_api_version.removeprefix("v"),
    )


# --------------------------------------------------------------------------- errors


def map_error(err: WhatsAppError) -> SendResult:
    """Turn a Graph API error into the sender's decision (131047 is handled by the caller)."""
    code = err.code
    text = f"{code}: {err.message}"[:300]
    header = err.raw_response.headers.get("Retry-After") if err.raw_response is not None else None
    try:
        hinted = float(header) if header else None
    except ValueError:
        hinted = None
    if code == 131056:  # pair rate limit: too many messages to this one person
        return SendResult("retry", retry_after=hinted or 6.0, error=text)
    if code == 130429:  # throughput of the phone number
        return SendResult("retry", retry_after=hinted or 2.0, pause_channel=True, error=text)
    if code in (80007, 4, 80008):  # WABA / app rate limit
        return SendResult("retry", retry_after=hinted or 60.0, pause_channel=True, error=text)
    if code == 131026:  # undeliverable: not on WhatsApp, blocked us, or too old an app
        return SendResult("blocked", error=text)
    if code in (0, 10, 190, 200):  # token expired / permission: every send would fail
        return SendResult("retry", retry_after=300.0, pause_channel=True, error=text)
    status = err.status_code
    if (status is not None and status >= 500) or err.is_transient or code in (1, 2, 131000, 131016):
        return SendResult("retry", retry_after=hinted, error=text)
    return SendResult("failed", error=text)  # 131051 unsupported type, 131009/100 bad params …


# --------------------------------------------------------------------------- sending


class WhatsAppTransport:
    """`Transport` for the outbox sender: one outbox row → one Cloud API message."""

    channel = CHANNEL

    def __init__(
        self,
        api: GraphAPIAsync | None,
        settings: Settings,
        translator: Translator,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.api = api
        self.phone_id = settings.whatsapp_phone_id or ""
        self.media_dir = Path(settings.media_dir)
        self.templates = template_names(settings)
        self.template_lang = settings.whatsapp_template_lang
        self.translator = translator
        self.clock = clock
        # Meta counts arrivals, and request timing jitters by tens of ms: keep a few messages
        # per second of margin on top of the sender's own safety factor (0.97 · 0.97 ≈ 0.94).
        self.limits = RateLimits(settings.whatsapp_rate * RATE_MARGIN, 0)
        self._uploaded: dict[str, tuple[str, datetime]] = {}  # sha256 → (media id, when)

    def window_open(self, msg: OutboundMessage) -> bool | None:
        """True/False for inside/outside the 24 h customer-service window; None if unknown
        (no identity). The identity's last message to us comes with the row (read with the
        sender's claim), so a send costs no transaction of its own. An identity that never
        wrote (no `last_inbound_at`: made for a phone number by an admin or another city app)
        is outside."""
        if msg.identity_id is None:
            return None
        last = msg.last_inbound_at
        if last is None:
            return False
        if last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        return self.clock() - last < WINDOW

    async def send(self, msg: OutboundMessage) -> SendResult:
        if self.api is None:
            return SendResult("failed", error="whatsapp not configured")
        template = self.templates.get(msg.kind)
        try:
            if msg.meta.get(AS_TEMPLATE) or self.window_open(msg) is False:
                if template:
                    return await self._send_template(msg, template)
                return SendResult("failed", error=WINDOW_CLOSED)
            try:
                return await self._post(msg.address, await self._render(msg))
            except WhatsAppError as err:
                if err.code == 131047 and template:
                    return await self._send_template(msg, template)
                return map_error(err)
        except WhatsAppError as err:  # from the template or the photo upload
            return map_error(err)
        except httpx.TimeoutException:
            return SendResult("retry", error="network: no answer in time")
        except httpx.TransportError as exc:
            return SendResult("retry", error=f"network: {exc}"[:300])
        except RenderError as exc:
            return SendResult("failed", error=f"render: {exc}")
        except OSError as exc:
            return SendResult("failed", error=f"photo: {exc}")

    async def _send_template(self, msg: OutboundMessage, name: str) -> SendResult:
        result = await self._post(
            msg.address, render_template(name, self.template_lang, msg.reply.text)
        )
        result.meta["template"] = name
        return result

    async def _render(self, msg: OutboundMessage) -> WaMessage:
        lang = msg.meta.get("lang")
        image_id = await self._upload(msg.reply.photo) if msg.reply.photo else None
        return render_reply(
            msg.reply,
            outbox_id=msg.outbox_id,
            more_label=self.translator.gettext(lang, N_("More")),
            list_label=self.translator.gettext(lang, N_("Choose")),
            image_id=image_id,
            page=msg.reply.page,
        )

    async def _upload(self, ref: MediaRef) -> str:
        assert self.api is not None
        cached = self._uploaded.get(ref.sha256)
        if cached and self.clock() - cached[1] < MEDIA_ID_TTL:
            return cached[0]
        data = await asyncio.to_thread((self.media_dir / ref.path).read_bytes)
        res = await self.api.upload_media(
            phone_id=self.phone_id,
            media=data,
            mime_type=ref.mime,
            filename=Path(ref.path).name,
        )
        media_id = str(res["id"])
        self._uploaded[ref.sha256] = (media_id, self.clock())
        return media_id

    async def _post(self, address: str, message: WaMessage) -> SendResult:
        assert self.api is not None
        is_bsuid = not address.isdigit()
        res = await self.api.send_message(
            sender=self.phone_id,
            to=None if is_bsuid else address,
            recipient=address if is_bsuid else None,
            recipient_type="individual",
            typ=message.type,
            msg=message.body,
        )
        wamid = str(res["messages"][0]["id"])
        return SendResult("sent", message_id=wamid)


# --------------------------------------------------------------------------- receiving


class MediaFetcher:
    """Fetch an inbound image through the Graph API media endpoint and store it cleanly."""

    def __init__(self, api: GraphAPIAsync | None, store: MediaStore) -> None:
        self.api = api
        self.store = store

    async def fetch(self, media_id: str) -> MediaRef:
        """Raises MediaError("too_large" | "bad_type" | "download_failed")."""
        if self.api is None:
            raise MediaError("download_failed", "whatsapp not configured")
        limit = self.store.max_bytes
        try:
            info = await self.api.get_media_url(media_id)
            mime = str(info.get("mime_type") or "").split(";")[0].strip().lower()
            if mime not in ALLOWED_IMAGE_MIMES:
                raise MediaError("bad_type", mime or "unknown")
            if int(info.get("file_size") or 0) > limit:
                raise MediaError("too_large", str(info.get("file_size")))
            data = bytearray()
            async with self.api.stream_media_bytes(str(info["url"])) as resp:
                if resp.status_code != 200:
                    raise MediaError("download_failed", f"HTTP {resp.status_code}")
                async for chunk in resp.aiter_bytes():
                    data += chunk
                    if len(data) > limit:
                        raise MediaError("too_large", f"> {limit} bytes")
        except (WhatsAppError, httpx.HTTPError, KeyError, ValueError, TypeError) as exc:
            raise MediaError("download_failed", type(exc).__name__) from None
        return await asyncio.to_thread(self.store.store_image, bytes(data), media_id)


def _is_image(document: dict[str, Any]) -> bool:
    return str(document.get("mime_type") or "").lower().startswith("image/")


def parse_command(text: str, known: frozenset[str]) -> tuple[str, str] | None:
    """("status", "PLU-2611-0042") for "status PLU-2611-0042" or "/Status …"; None if no command."""
    parts = text.strip().split(maxsplit=1)
    if not parts:
        return None
    head = parts[0]
    name = (head[1:] if head.startswith("/") else head).lower()
    if name not in known:
        return None
    return name, parts[1].strip() if len(parts) > 1 else ""


class WhatsAppChannel:
    """The WhatsApp channel: webhook routes, payload → `Inbound`, and the transport."""

    name = CHANNEL

    def __init__(
        self,
        settings: Settings,
        i18n: Translator,
        on_status: StatusCallback,
        known_commands: Iterable[str],
        *,
        media: MediaStore | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`media` lets the app share its MediaStore; by default one is built from settings.
        `clock`: the app's one clock (the 24-hour window is measured on it)."""
        self.settings = settings
        self.known_commands = frozenset(c.lower().lstrip("/") for c in known_commands)
        self._http = make_graph_client(settings.whatsapp_api_base)
        self._wa = make_pywa(settings, self._http)
        api = self._wa.api if settings.whatsapp_token else None
        self.transport = WhatsAppTransport(api, settings, i18n, clock)
        store = media or MediaStore(settings.media_dir, settings.max_photo_bytes)
        self.media = MediaFetcher(api, store)
        secret = settings.whatsapp_app_secret
        verify = settings.whatsapp_verify_token
        self.webhook = WhatsAppWebhook(
            app_secret=secret.get_secret_value().encode() if secret else b"",
            verify_token=verify.get_secret_value() if verify else "",
            on_status=on_status,
        )

    def check_settings(self) -> None:
        """Raise SettingsError naming the first missing WhatsApp setting."""
        s = self.settings

        def raw(value: SecretStr | str | None) -> str:
            return value.get_secret_value() if isinstance(value, SecretStr) else (value or "")

        required = {
            "WHATSAPP_APP_SECRET": s.whatsapp_app_secret,
            "WHATSAPP_TOKEN": s.whatsapp_token,
            "WHATSAPP_PHONE_ID": s.whatsapp_phone_id,
            "WHATSAPP_VERIFY_TOKEN": s.whatsapp_verify_token,
        }
        for env, value in required.items():
            if not raw(value).strip():
                raise SettingsError(f"setting {env}: required for the WhatsApp channel")

    async def start(self, inbox: InboxSink) -> None:
        """Validate the configuration and begin accepting webhook POSTs (no polling)."""
        self.check_settings()
        self.webhook.inbox = inbox

    async def stop(self) -> None:
        self.webhook.inbox = None
        await self._http.aclose()

    def register_routes(self, app: web.Application) -> None:
        self.webhook.add_routes(app, self.settings.whatsapp_webhook_path)

    async def to_inbound(self, payload: dict[str, Any]) -> list[Inbound]:
        msg: dict[str, Any] = payload.get("message") or {}
        contact: dict[str, Any] = payload.get("contact") or {}
        user_id, wa_id = sender_ids(payload)
        key = user_id or wa_id
        if not key:
            log.warning("whatsapp message %s without a sender", msg.get("id"))
            return []
        base: dict[str, Any] = {
            "channel": CHANNEL,
            "external_id": key,
            "chat_id": wa_id or user_id,
            "display_name": (contact.get("profile") or {}).get("name"),
            "phone": wa_id,
        }
        mtype = msg.get("type")
        if mtype == "text":
            return [self._text(base, str((msg.get("text") or {}).get("body") or ""))]
        if mtype == "location":
            loc = msg.get("location") or {}
            try:
                lat, lon = float(loc["latitude"]), float(loc["longitude"])
            except (KeyError, TypeError, ValueError):
                return []
            text = loc.get("name") or loc.get("address")
            return [Inbound(kind="location", lat=lat, lon=lon, text=text, **base)]
        if mtype == "image":
            return [await self._image(base, msg.get("image") or {})]
        if mtype == "document" and _is_image(msg.get("document") or {}):
            return [await self._image(base, msg.get("document") or {})]  # a photo sent as file
        if mtype in ("interactive", "button"):
            return await self._choice(base, msg)
        if mtype in SILENT_TYPES:
            log.info("whatsapp message type %r ignored", mtype)
            return []
        # Stickers, voice notes, documents, contacts, "unsupported" …: an empty text, so the
        # core answers with the current step's hint instead of leaving the person unanswered.
        return [Inbound(kind="text", text="", **base)]

    def _text(self, base: dict[str, Any], text: str) -> Inbound:
        text = text[:MAX_TEXT]
        cmd = parse_command(text, self.known_commands)
        if cmd:
            return Inbound(kind="command", text=text, command=cmd[0], args=cmd[1], **base)
        return Inbound(kind="text", text=text, **base)

    async def _image(self, base: dict[str, Any], image: dict[str, Any]) -> Inbound:
        caption = (image.get("caption") or None) and str(image["caption"])[:MAX_TEXT]
        media_id = image.get("id")
        if not media_id:
            return Inbound(kind="photo", text=caption, photo_error="download_failed", **base)
        try:
            ref = await self.media.fetch(str(media_id))
        except MediaError as exc:
            log.info("whatsapp image %s refused: %s", media_id, exc)
            return Inbound(kind="photo", text=caption, photo_error=exc.code, **base)
        return Inbound(kind="photo", text=caption, photo=ref, **base)

    async def _choice(self, base: dict[str, Any], msg: dict[str, Any]) -> list[Inbound]:
        if msg.get("type") == "button":  # quick-reply button of a template
            choice = (msg.get("button") or {}).get("payload")
        else:
            inter = msg.get("interactive") or {}
            picked = inter.get("button_reply") or inter.get("list_reply") or {}
            choice = picked.get("id")
        if not choice:
            return []
        more = parse_more_row_id(str(choice))
        if more is not None:  # the "More" row of a long list: the core sends the next page
            choice = "more:{}:{}".format(*more)
        return [Inbound(kind="choice", choice=str(choice), **base)]
