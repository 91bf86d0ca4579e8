"""A fake WhatsApp Cloud (Graph) API: real HTTP on 127.0.0.1 (port 0), in-loop or in-thread.

Endpoints (all but the media download need `Authorization: Bearer <token>`, else 401):

- `POST /{ver}/{phone_id}/messages` — validates like Meta (interactive limits → 131009,
  structural problems → 100; templates: unknown name → 132001, wrong number of parameters →
  132000, a parameter with a new-line, a tab or more than 4 consecutive spaces → 132018, a
  body longer than 1024 characters once filled in → 132005), records the message, answers
  with a `wamid`.
- `GET /{ver}/{media_id}` — media info with a download URL pointing at this fake.
- `GET /download/{media_id}` — the bytes (Bearer required, like lookaside.fbsbx.com).
- `POST /{ver}/{phone_id}/media` — multipart upload → `{"id": ...}`.

Programmable errors per recipient (`fail(recipient, code, times)`), a throughput limit per
phone number (default 80 msg/s, 130429 beyond it) and counters.  Helpers at the bottom build
webhook bodies like Meta's and POST them signed (or forged, or unsigned).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

ERRORS: dict[int, tuple[int, str]] = {
    100: (400, "Invalid parameter"),
    131009: (400, "Parameter value is not valid"),
    131047: (400, "Re-engagement message"),
    131056: (400, "(Business Account, Consumer Account) pair rate limit hit"),
    130429: (429, "Rate limit hit"),
    80007: (429, "Rate limit issues"),
    131026: (400, "Message Undeliverable"),
    131051: (400, "Unsupported message type"),
    131000: (500, "Something went wrong"),
    132000: (400, "Number of parameters does not match the expected number of params"),
    132001: (404, "Template name does not exist in the translation"),
    132005: (400, "Translated text too long"),
    132018: (400, "There was an issue with the parameters in your template message"),
    500: (500, "Internal server error"),
}


def error_body(code: int, details: str = "") -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) in Meta's error JSON shape."""
    status, message = ERRORS.get(code, (400, "Error"))
    api_code = 131000 if code == 500 else code
    return status, {
        "error": {
            "message": f"(#{api_code}) {message}",
            "type": "OAuthException",
            "code": api_code,
            "error_data": {"messaging_product": "whatsapp", "details": details or message},
            "fbtrace_id": "AbCdEfFake",
        }
    }


@dataclass
class SentMessage:
    phone_id: str
    to: str | None
    recipient: str | None
    type: str
    body: dict[str, Any]
    wamid: str
    at: float = field(default_factory=time.monotonic)

    @property
    def address(self) -> str:
        return self.to or self.recipient or ""

    @property
    def content(self) -> dict[str, Any]:
        """The object under the message's type key (e.g. the `interactive` object)."""
        value: dict[str, Any] = self.body.get(self.type) or {}
        return value


@dataclass
class StoredMedia:
    data: bytes
    mime: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class _Invalid(Exception):
    def __init__(self, code: int, details: str) -> None:
        super().__init__(details)
        self.code = code


# The approved templates of the fake business account (README: "The 24-hour window").
TEMPLATES: dict[str, str] = {
    "status_laporan": "Kabar laporan Anda di Lapor Warga: {{1}}",
    "peringatan_dini": "Peringatan dini: {{1}}",
}
TEMPLATE_BODY_MAX = 1024
PARAM_REFUSED = "Param text cannot have new-line/tab characters or more than 4 consecutive spaces"


def _need(cond: bool, details: str, code: int = 131009) -> None:
    if not cond:
        raise _Invalid(code, details)


def _len_ok(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, str) and lo <= len(value) <= hi


def validate_message(data: dict[str, Any]) -> None:
    """Raise _Invalid like Meta would for a bad `/messages` body."""
    _need(data.get("messaging_product") == "whatsapp", "messaging_product", 100)
    _need(bool(data.get("to") or data.get("recipient")), "to or recipient required", 100)
    typ = data.get("type", "text")
    obj = data.get(typ)
    _need(isinstance(obj, dict), f"missing {typ} object", 100)
    assert isinstance(obj, dict)
    if typ == "text":
        _need(_len_ok(obj.get("body"), 1, 4096), "text.body must be 1..4096 characters")
    elif typ == "image":
        _need(bool(obj.get("id") or obj.get("link")), "image.id or image.link required", 100)
        if "caption" in obj:
            _need(_len_ok(obj["caption"], 0, 1024), "image.caption ≤ 1024 characters")
    elif typ == "template":
        _validate_template(obj)
    elif typ == "interactive":
        _validate_interactive(obj)
    else:
        raise _Invalid(131051, f"unsupported type {typ}")


def _validate_template(obj: dict[str, Any]) -> None:
    name = obj.get("name")
    _need(bool(name), "template.name required", 100)
    _need(bool((obj.get("language") or {}).get("code")), "template.language.code", 100)
    body = TEMPLATES.get(str(name))
    _need(body is not None, f"template {name} does not exist", 132001)
    assert body is not None
    params: list[Any] = []
    for comp in obj.get("components") or []:
        if isinstance(comp, dict) and comp.get("type") == "body":
            params += comp.get("parameters") or []
    expected = body.count("{{")
    _need(len(params) == expected, f"body: {len(params)} params, expected {expected}", 132000)
    for i, p in enumerate(params, start=1):
        text = (p or {}).get("text") if isinstance(p, dict) else None
        _need(isinstance(text, str) and text.strip() != "", "Parameter text is empty", 132000)
        assert isinstance(text, str)
        _need("\n" not in text and "\t" not in text and " " * 5 not in text, PARAM_REFUSED, 132018)
        body = body.replace("{{" + str(i) + "}}", text)
    _need(len(body) <= TEMPLATE_BODY_MAX, "body longer than 1024 characters", 132005)


def _validate_interactive(obj: dict[str, Any]) -> None:
    kind = obj.get("type")
    body = (obj.get("body") or {}).get("text")
    _need(_len_ok(body, 1, 1024), "interactive body.text must be 1..1024 characters")
    action = obj.get("action") or {}
    if kind == "button":
        buttons = action.get("buttons") or []
        _need(1 <= len(buttons) <= 3, "buttons: 1..3 allowed")
        ids = [((b or {}).get("reply") or {}).get("id") for b in buttons]
        for b in buttons:
            reply = (b or {}).get("reply") or {}
            _need(_len_ok(reply.get("title"), 1, 20), "button title must be 1..20 characters")
            _need(_len_ok(reply.get("id"), 1, 256), "button id must be 1..256 characters")
        _need(len(set(ids)) == len(ids), "button ids must be unique")
        header = obj.get("header")
        if header is not None:
            _need(header.get("type") in ("text", "image", "video", "document"), "header.type")
    elif kind == "list":
        _need(_len_ok(action.get("button"), 1, 20), "list button must be 1..20 characters")
        sections = action.get("sections") or []
        _need(1 <= len(sections) <= 10, "sections: 1..10")
        rows = [r for s in sections for r in (s or {}).get("rows") or []]
        _need(1 <= len(rows) <= 10, "rows: 1..10 in total")
        for r in rows:
            _need(_len_ok(r.get("title"), 1, 24), "row title must be 1..24 characters")
            _need(_len_ok(r.get("id"), 1, 200), "row id must be 1..200 characters")
            if "description" in r:
                _need(_len_ok(r["description"], 0, 72), "row description ≤ 72 characters")
        ids = [r.get("id") for r in rows]
        _need(len(set(ids)) == len(ids), "row ids must be unique")
    elif kind == "location_request_message":
        _need(action.get("name") == "send_location", "action.name must be send_location")
    else:
        raise _Invalid(100, f"unknown interactive type {kind}")


class FakeGraphAPI:
    """The fake server.  `async with FakeGraphAPI() as g:` or `g.start_in_thread()`."""

    def __init__(
        self,
        token: str = "test-token",
        throughput: float = 80.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.token = token
        self.throughput = throughput
        self.host = host
        self.port = 0
        self.sent: list[SentMessage] = []
        self.rejected: list[tuple[dict[str, Any], int]] = []  # (body, error code)
        self.media: dict[str, StoredMedia] = {}
        self.counters: Counter[str] = Counter()
        self._fail: dict[str, deque[int]] = defaultdict(deque)
        self._fail_always: dict[str, int] = {}
        self._recent: dict[str, deque[float]] = defaultdict(deque)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ programming
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def fail(self, recipient: str, code: int, times: int = 1) -> None:
        """The next `times` sends to `recipient` answer with error `code` (500 → HTTP 500)."""
        with self._lock:
            self._fail[recipient].extend([code] * times)

    def fail_always(self, recipient: str, code: int | None) -> None:
        with self._lock:
            if code is None:
                self._fail_always.pop(recipient, None)
            else:
                self._fail_always[recipient] = code

    def add_media(self, data: bytes, mime: str = "image/jpeg", media_id: str | None = None) -> str:
        media_id = media_id or f"media{next(self._ids)}"
        self.media[media_id] = StoredMedia(data, mime)
        return media_id

    def sent_to(self, address: str) -> list[SentMessage]:
        return [m for m in self.sent if m.address == address]

    # ------------------------------------------------------------------ app
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{ver}/{phone_id}/messages", self._messages)
        app.router.add_post("/{ver}/{phone_id}/media", self._upload)
        app.router.add_get("/download/{media_id}", self._download)
        app.router.add_get("/{ver}/{media_id}", self._media_info)
        return app

    def _authorized(self, request: web.Request) -> bool:
        ok = hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {self.token}")
        if not ok:
            self.counters["unauthorized"] += 1
        return ok

    @staticmethod
    def _unauthorized() -> web.Response:
        body = {"error": {"message": "Invalid OAuth access token", "type": "OAuthException",
                          "code": 190, "fbtrace_id": "AbCdEfFake"}}  # fmt: skip
        return web.json_response(body, status=401)

    def _over_throughput(self, phone_id: str) -> bool:
        if self.throughput <= 0:
            return False
        now = time.monotonic()
        with self._lock:
            window = self._recent[phone_id]
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= self.throughput:
                return True
            window.append(now)
            return False

    def _programmed_error(self, address: str) -> int | None:
        with self._lock:
            queue = self._fail.get(address)
            if queue:
                return queue.popleft()
            return self._fail_always.get(address)

    def _error(self, data: dict[str, Any], code: int, details: str = "") -> web.Response:
        self.counters["errors"] += 1
        self.counters[f"error_{code}"] += 1
        self.rejected.append((data, code))
        status, body = error_body(code, details)
        headers = {"Retry-After": "1"} if code == 130429 else None
        return web.json_response(body, status=status, headers=headers)

    async def _messages(self, request: web.Request) -> web.Response:
        self.counters["requests"] += 1
        if not self._authorized(request):
            return self._unauthorized()
        phone_id = request.match_info["phone_id"]
        try:
            data = await request.json()
        except json.JSONDecodeError:
            return self._error({}, 100, "body is not JSON")
        try:
            validate_message(data)
        except _Invalid as exc:
            return self._error(data, exc.code, str(exc))
        address = str(data.get("to") or data.get("recipient"))
        code = self._programmed_error(address)
        if code is not None and not (code == 131047 and data.get("type") == "template"):
            return self._error(data, code)
        if self._over_throughput(phone_id):
            return self._error(data, 130429)
        wamid = f"wamid.FAKE{next(self._ids):08d}"
        typ = data.get("type", "text")
        self.sent.append(
            SentMessage(phone_id, data.get("to"), data.get("recipient"), typ, data, wamid)
        )
        self.counters["messages"] += 1
        contact = {"input": address}
        contact["user_id" if data.get("recipient") else "wa_id"] = address
        message: dict[str, Any] = {"id": wamid}
        if typ == "template":
            message["message_status"] = "accepted"
        return web.json_response(
            {"messaging_product": "whatsapp", "contacts": [contact], "messages": [message]}
        )

    async def _media_info(self, request: web.Request) -> web.Response:
        self.counters["media_info"] += 1
        if not self._authorized(request):
            return self._unauthorized()
        media_id = request.match_info["media_id"]
        item = self.media.get(media_id)
        if item is None:
            return self._error({}, 100, f"unknown media {media_id}")
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.base_url}/download/{media_id}?ext=1&hash=fake",
                "mime_type": item.mime,
                "sha256": item.sha256,
                "file_size": len(item.data),
                "id": media_id,
            }
        )

    async def _download(self, request: web.Request) -> web.Response:
        self.counters["downloads"] += 1
        if not self._authorized(request):
            return self._unauthorized()
        item = self.media.get(request.match_info["media_id"])
        if item is None:
            return web.Response(status=404)
        return web.Response(body=item.data, content_type=item.mime)

    async def _upload(self, request: web.Request) -> web.Response:
        self.counters["uploads"] += 1
        if not self._authorized(request):
            return self._unauthorized()
        form = await request.post()
        upload = form.get("file")
        if form.get("messaging_product") != "whatsapp" or not isinstance(upload, web.FileField):
            return self._error({}, 100, "file and messaging_product required")
        data = upload.file.read()
        mime = str(form.get("type") or upload.content_type)
        return web.json_response({"id": self.add_media(data, mime)})

    # ------------------------------------------------------------------ running
    async def start(self) -> FakeGraphAPI:
        self._runner = web.AppRunner(self.make_app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeGraphAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start_in_thread(self) -> FakeGraphAPI:
        """Run the server on its own event loop in a daemon thread (for sync code)."""
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.close())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-graph-api", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake Graph API did not start")
        return self

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None
            self._loop = None


# ---------------------------------------------------------------------- webhook helpers

PHONE_ID = "106540352242922"
WA_ID = "6281234567890"
USER_ID = "ID.1234567890123456789"
_wamids = itertools.count(1)


def new_wamid() -> str:
    return f"wamid.IN{next(_wamids):010d}"


def text_message(text: str, **kw: Any) -> dict[str, Any]:
    return {"type": "text", "text": {"body": text}, **kw}


def location_message(lat: float, lon: float, name: str | None = None) -> dict[str, Any]:
    loc: dict[str, Any] = {"latitude": lat, "longitude": lon}
    if name:
        loc["name"] = name
    return {"type": "location", "location": loc}


def image_message(
    media_id: str, caption: str | None = None, mime: str = "image/jpeg"
) -> dict[str, Any]:
    image: dict[str, Any] = {"id": media_id, "mime_type": mime, "sha256": "x"}
    if caption is not None:
        image["caption"] = caption
    return {"type": "image", "image": image}


def button_reply(choice_id: str, title: str = "OK") -> dict[str, Any]:
    return {
        "type": "interactive",
        "interactive": {"type": "button_reply", "button_reply": {"id": choice_id, "title": title}},
    }


def list_reply(choice_id: str, title: str = "Item") -> dict[str, Any]:
    return {
        "type": "interactive",
        "interactive": {"type": "list_reply", "list_reply": {"id": choice_id, "title": title}},
    }


def status(wamid: str, state: str, error_code: int | None = None, wa_id: str = WA_ID) -> dict:
    st: dict[str, Any] = {
        "id": wamid,
        "status": state,
        "timestamp": str(int(time.time())),
        "recipient_id": wa_id,
    }
    if error_code is not None:
        st["errors"] = [{"code": error_code, "title": ERRORS.get(error_code, (0, "Error"))[1]}]
    return st


def webhook_body(
    *messages: dict[str, Any],
    statuses: list[dict[str, Any]] | None = None,
    wa_id: str | None = WA_ID,
    user_id: str | None = None,
    name: str = "Warga Palu",
    phone_id: str = PHONE_ID,
) -> dict[str, Any]:
    """A Meta-shaped webhook body; messages get an id, sender and timestamp if missing.

    `user_id` adds `contacts[].user_id` / `from_user_id` (BSUID); `wa_id=None` makes a
    username-only sender (no phone number).
    """
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_id},
    }
    if messages:
        contact: dict[str, Any] = {"profile": {"name": name}}
        if wa_id:
            contact["wa_id"] = wa_id
        if user_id:
            contact["user_id"] = user_id
        value["contacts"] = [contact]
        full = []
        for m in messages:
            m = {"id": new_wamid(), "timestamp": str(int(time.time())), **m}
            if wa_id:
                m.setdefault("from", wa_id)
            if user_id:
                m.setdefault("from_user_id", user_id)
            full.append(m)
        value["messages"] = full
    if statuses:
        value["statuses"] = statuses
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def sign(body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


async def post_webhook(
    url: str,
    body: dict[str, Any] | bytes,
    app_secret: str | None,
    *,
    forge: bool = False,
) -> tuple[int, str]:
    """POST a webhook body; signed with `app_secret`, forged (wrong secret) or unsigned (None)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if app_secret is not None:
        headers["X-Hub-Signature-256"] = sign(raw, "forged" + app_secret if forge else app_secret)
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=raw, headers=headers) as resp,
    ):
        return resp.status, await resp.text()
