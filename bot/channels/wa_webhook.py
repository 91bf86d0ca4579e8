"""The WhatsApp Cloud API webhook: verification handshake, signature check, inbox hand-off.

We parse Meta's JSON ourselves instead of using pywa's update parsing: pywa 4.5 builds the sender
with `contacts[0]["user_id"]` and drops (logs and skips) every message whose contact has no
business-scoped user id — which is every payload sent before BSUIDs roll out, and it only looks
at `messages[0]` although one POST may carry several messages.

Each message is stored on its own with `inbox.accept("whatsapp", key=wamid, payload=...)`, where
the payload is a self-contained envelope (`{"message": ..., "contact": ..., "metadata": ...}`,
see `split_webhook`).  Status updates go to the injected `on_status` callback.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.channels.base import InboxSink
from bot.http import read_body

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
DEFAULT_MAX_BODY = 4 * 1024 * 1024  # Meta documents webhook payloads of up to 3 MB

StatusCallback = Callable[[str, str, str | None], Awaitable[None] | None]


def signature_for(body: bytes, app_secret: bytes) -> str:
    """The `X-Hub-Signature-256` header value Meta sends for `body`."""
    return "sha256=" + hmac.new(app_secret, body, hashlib.sha256).hexdigest()


def signature_ok(body: bytes, header: str | None, app_secret: bytes) -> bool:
    """Constant-time check of `X-Hub-Signature-256` against HMAC-SHA256(body, app secret)."""
    if not header or not app_secret:
        return False
    return hmac.compare_digest(header.strip().encode(), signature_for(body, app_secret).encode())


@dataclass(frozen=True)
class StatusUpdate:
    wamid: str
    status: str  # sent | delivered | read | failed (| deleted, ...)
    error: str | None


def _contact_for(message: dict[str, Any], contacts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The `contacts[]` entry describing the sender of `message` (by wa_id or user_id)."""
    sender = message.get("from")
    sender_uid = message.get("from_user_id")
    for c in contacts:
        if (sender and c.get("wa_id") == sender) or (sender_uid and c.get("user_id") == sender_uid):
            return c
    return contacts[0] if len(contacts) == 1 else None


def sender_ids(envelope: dict[str, Any]) -> tuple[str | None, str | None]:
    """(user_id, wa_id) of the sender of one stored message envelope; either may be None."""
    msg: dict[str, Any] = envelope.get("message") or {}
    contact: dict[str, Any] = envelope.get("contact") or {}
    user_id = contact.get("user_id") or msg.get("from_user_id") or None
    wa_id = contact.get("wa_id") or msg.get("from") or None
    return (str(user_id) if user_id else None, str(wa_id) if wa_id else None)


def person_key(envelope: dict[str, Any]) -> str | None:
    """Who sent it: the business-scoped user id if present, else the wa_id."""
    user_id, wa_id = sender_ids(envelope)
    return user_id or wa_id


def _status_error(status: dict[str, Any]) -> str | None:
    errors = status.get("errors") or []
    if not errors or not isinstance(errors[0], dict):
        return None
    err = errors[0]
    text = err.get("title") or err.get("message") or ""
    return f"{err.get('code', '?')}: {text}".rstrip(": ")


def status_error_code(error: str | None) -> int | None:
    """The Graph API error code of a failed status as the webhook reported it (the number
    before the colon of "131047: Re-engagement message"), else None."""
    head = (error or "").partition(":")[0].strip()
    return int(head) if head.isascii() and head.isdigit() else None


def split_webhook(data: Any) -> tuple[list[tuple[str, dict[str, Any]]], list[StatusUpdate]]:
    """Split one webhook body into per-message envelopes `(wamid, payload)` and status updates.

    Raises ValueError when the body is not shaped like a WhatsApp webhook at all.
    """
    if not isinstance(data, dict) or not isinstance(data.get("entry"), list):
        raise ValueError("not a WhatsApp webhook body")
    messages: list[tuple[str, dict[str, Any]]] = []
    statuses: list[StatusUpdate] = []
    for entry in data["entry"]:
        for change in (entry or {}).get("changes") or []:
            value = (change or {}).get("value")
            if (change or {}).get("field") != "messages" or not isinstance(value, dict):
                continue
            contacts = [c for c in value.get("contacts") or [] if isinstance(c, dict)]
            metadata = value.get("metadata") or {}
            for msg in value.get("messages") or []:
                if not isinstance(msg, dict) or not msg.get("id"):
                    continue
                envelope = {
                    "message": msg,
                    "contact": _contact_for(msg, contacts),
                    "metadata": metadata,
                }
                messages.append((str(msg["id"]), envelope))
            for st in value.get("statuses") or []:
                if isinstance(st, dict) and st.get("id") and st.get("status"):
                    statuses.append(
                        StatusUpdate(str(st["id"]), str(st["status"]), _status_error(st))
                    )
    return messages, statuses


class WhatsAppWebhook:
    """aiohttp handlers for GET (handshake) and POST (updates) on one path.

    `inbox` is set by `WhatsAppChannel.start`; until then POSTs answer 503 so Meta retries.
    """

    def __init__(
        self,
        app_secret: bytes,
        verify_token: str,
        on_status: StatusCallback,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.on_status = on_status
        self.max_body = max_body
        self.inbox: InboxSink | None = None

    def add_routes(self, app: web.Application, path: str) -> None:
        app.router.add_get(path, self.handle_verify)
        app.router.add_post(path, self.handle_update)

    async def handle_verify(self, request: web.Request) -> web.Response:
        q = request.query
        token = q.get("hub.verify_token", "")
        ok = (
            q.get("hub.mode") == "subscribe"
            and bool(self.verify_token)
            and hmac.compare_digest(token.encode(), self.verify_token.encode())
        )
        if not ok:
            return web.Response(status=403, text="forbidden")
        return web.Response(text=q.get("hub.challenge", ""))

    async def handle_update(self, request: web.Request) -> web.Response:
        body = await read_body(request, self.max_body)
        header = request.headers.get("X-Hub-Signature-256")
        if not self.app_secret:
            return web.Response(status=403, text="webhook not configured")
        if not header:
            return web.Response(status=401, text="signature missing")
        if not signature_ok(body, header, self.app_secret):
            log.warning("whatsapp webhook: bad signature from %s", request.remote)
            return web.Response(status=403, text="bad signature")
        try:
            messages, statuses = split_webhook(json.loads(body))
        except (ValueError, UnicodeDecodeError, AttributeError, TypeError) as exc:
            log.warning("whatsapp webhook: malformed body: %s", exc)
            return web.Response(status=400, text="malformed body")
        inbox = self.inbox
        if inbox is None:
            return web.Response(status=503, text="not started")
        for wamid, payload in messages:
            # An exception here becomes a 500: Meta retries and the inbox dedupes.
            await inbox.accept(CHANNEL, key=wamid, payload=payload, sender_key=person_key(payload))
        for st in statuses:
            try:
                result = self.on_status(st.wamid, st.status, st.error)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("whatsapp webhook: on_status failed for %s", st.wamid)
        return web.Response(text="ok")
