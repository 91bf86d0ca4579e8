"""WhatsApp adapter: webhook security, payload mapping, media, rendering, sending."""

from __future__ import annotations

import io
import random
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from bot.channels.base import WINDOW_CLOSED, Channel, OutboundMessage, RateLimits, Transport
from bot.channels.wa_render import (
    BUTTON_TITLE_MAX,
    LIST_BUTTON_MAX,
    ROW_DESCRIPTION_MAX,
    ROW_TITLE_MAX,
    TEMPLATE_PARAM_MAX,
    RenderError,
    cut,
    more_row_id,
    parse_more_row_id,
    render_reply,
    render_template,
    template_parameter,
)
from bot.channels.wa_webhook import signature_ok
from bot.channels.whatsapp import (
    RATE_MARGIN,
    GraphBaseTransport,
    WhatsAppChannel,
    parse_command,
)
from bot.config import Settings, SettingsError, load_settings
from bot.media import MediaStore
from handlers.events import Choice, Inbound, Reply
from tests.fakes.graph_api import (
    USER_ID,
    WA_ID,
    FakeGraphAPI,
    _Invalid,
    button_reply,
    image_message,
    list_reply,
    location_message,
    post_webhook,
    sign,
    status,
    text_message,
    validate_message,
    webhook_body,
)

TOKEN = "graph-token"
SECRET = "app-secret-123"
VERIFY = "verify-me"
COMMANDS = ("lapor", "status", "batal", "bantuan")


class FakeI18n:
    """Stands in for bot.i18n.I18n: only the msgids this adapter uses."""

    def gettext(self, code: str | None, msgid: str) -> str:
        indonesian = {"More": "Lainnya", "Choose": "Pilih"}
        return msgid if code == "en" else indonesian.get(msgid, msgid)


class MemoryInbox:
    """An InboxSink that dedupes on the key like the real unique index."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, bool]] = []
        self.sender_keys: list[str | None] = []

    async def accept(
        self, channel: str, key: str, payload: dict[str, Any], sender_key: str | None = None
    ) -> bool:
        fresh = key not in self.rows
        if fresh:
            self.rows[key] = payload
        self.calls.append((channel, key, fresh))
        self.sender_keys.append(sender_key)
        return fresh

    async def accept_many(
        self, channel: str, items: Sequence[tuple[str, dict[str, Any], str | None]]
    ) -> int:
        return sum([await self.accept(channel, k, p, s) for k, p, s in items])


@dataclass
class Harness:
    graph: FakeGraphAPI
    settings: Settings
    channel: WhatsAppChannel
    inbox: MemoryInbox
    statuses: list[tuple[str, str, str | None]]
    last_inbound: dict[int, datetime]
    client: TestClient

    async def post(self, body: dict | bytes, secret: str | None = SECRET, forge: bool = False):
        url = str(self.client.make_url(self.settings.whatsapp_webhook_path))
        return await post_webhook(url, body, secret, forge=forge)

    async def deliver(self, body: dict[str, Any]) -> list[Inbound]:
        """POST a signed webhook and map every stored payload it produced."""
        before = set(self.inbox.rows)
        status_code, _ = await self.post(body)
        assert status_code == 200
        out: list[Inbound] = []
        for key, payload in self.inbox.rows.items():
            if key not in before:
                out += await self.channel.to_inbound(payload)
        return out


def make_settings(tmp_path: Path, base_url: str, **over: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,
        "whatsapp_token": TOKEN,
        "whatsapp_phone_id": "PHONE1",
        "whatsapp_app_secret": SECRET,
        "whatsapp_verify_token": VERIFY,
        "whatsapp_api_base": base_url,
        "media_dir": tmp_path / "media",
    }
    values.update(over)
    return load_settings(**values)


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphAPI]:
    async with FakeGraphAPI(token=TOKEN) as g:
        yield g


@pytest.fixture
async def make_harness(tmp_path: Path, graph: FakeGraphAPI) -> AsyncIterator[Callable[..., Any]]:
    created: list[Harness] = []

    async def build(start: bool = True, **over: Any) -> Harness:
        settings = make_settings(tmp_path, graph.base_url, **over)
        statuses: list[tuple[str, str, str | None]] = []
        last_inbound: dict[int, datetime] = {}

        async def on_status(wamid: str, state: str, error: str | None) -> None:
            statuses.append((wamid, state, error))

        channel = WhatsAppChannel(
            settings,
            FakeI18n(),
            on_status=on_status,
            known_commands=COMMANDS,
        )
        app = web.Application()
        channel.register_routes(app)
        client = TestClient(TestServer(app, host="127.0.0.1", port=0))
        await client.start_server()
        inbox = MemoryInbox()
        if start:
            await channel.start(inbox)
        h = Harness(graph, settings, channel, inbox, statuses, last_inbound, client)
        created.append(h)
        return h

    yield build
    for h in created:
        await h.client.close()
        await h.channel.stop()


@pytest.fixture
async def harness(make_harness: Callable[..., Any]) -> Harness:
    h: Harness = await make_harness()
    return h


def out(h: Harness, reply: Reply, kind: str = "reply", **kw: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "outbox_id": 7,
        "channel": "whatsapp",
        "address": WA_ID,
        "reply": reply,
        "kind": kind,
        "identity_id": None,
        "meta": {},
    }
    values.update(kw)
    if values["identity_id"] is not None:  # the sender reads it with the claim
        values.setdefault("last_inbound_at", h.last_inbound.get(values["identity_id"]))
    return OutboundMessage(**values)


# ------------------------------------------------------------------ webhook: security


async def test_handshake_echoes_challenge_only_for_the_right_token(harness: Harness) -> None:
    path = harness.settings.whatsapp_webhook_path
    ok = await harness.client.get(
        path, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "42"}
    )
    assert ok.status == 200 and await ok.text() == "42"
    for params in (
        {"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "42"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY, "hub.challenge": "42"},
        {"hub.challenge": "42"},
    ):
        bad = await harness.client.get(path, params=params)
        assert bad.status == 403 and "42" not in await bad.text()


async def test_valid_signature_is_stored_forged_and_missing_are_not(harness: Harness) -> None:
    body = webhook_body(text_message("halo"))
    assert (await harness.post(body, forge=True))[0] == 403
    assert (await harness.post(body, secret=None))[0] == 401
    assert harness.inbox.calls == []
    assert (await harness.post(body))[0] == 200
    assert len(harness.inbox.rows) == 1


def test_signature_check_is_exact() -> None:
    body = b'{"a":1}'
    good = sign(body, SECRET)
    assert signature_ok(body, good, SECRET.encode())
    assert not signature_ok(body + b" ", good, SECRET.encode())
    assert not signature_ok(body, good.replace("sha256=", "sha1="), SECRET.encode())
    assert not signature_ok(body, good, b"")
    assert not signature_ok(body, None, SECRET.encode())


async def test_without_app_secret_the_channel_refuses_to_start_and_stores_nothing(
    make_harness: Callable[..., Any],
) -> None:
    h: Harness = await make_harness(start=False, whatsapp_app_secret=None)
    with pytest.raises(SettingsError, match="WHATSAPP_APP_SECRET"):
        await h.channel.start(h.inbox)
    h.channel.webhook.inbox = h.inbox  # even if someone wires it anyway
    body = webhook_body(text_message("halo"))
    assert (await h.post(body, secret=None))[0] == 403
    assert (await h.post(body, secret=""))[0] == 403
    assert h.inbox.calls == []


async def test_other_missing_settings_are_named(make_harness: Callable[..., Any]) -> None:
    h: Harness = await make_harness(start=False, whatsapp_verify_token=None)
    with pytest.raises(SettingsError, match="WHATSAPP_VERIFY_TOKEN"):
        await h.channel.start(h.inbox)


async def test_malformed_and_oversized_bodies(harness: Harness) -> None:
    assert (await harness.post(b"{not json"))[0] == 400
    assert (await harness.post(b'["a list"]'))[0] == 400
    harness.channel.webhook.max_body = 2000
    big = webhook_body(text_message("x" * 3000))
    assert (await harness.post(big))[0] == 413
    assert harness.inbox.calls == []
    assert (await harness.post(webhook_body(text_message("still up"))))[0] == 200


async def test_before_start_posts_get_503_so_meta_retries(
    make_harness: Callable[..., Any],
) -> None:
    h: Harness = await make_harness(start=False)
    assert (await h.post(webhook_body(text_message("halo"))))[0] == 503


async def test_same_wamid_twice_is_accepted_twice_and_deduped(harness: Harness) -> None:
    body = webhook_body(text_message("halo"), text_message("lagi"))
    assert (await harness.post(body))[0] == 200
    assert (await harness.post(body))[0] == 200  # Meta's retry
    fresh = [c[2] for c in harness.inbox.calls]
    assert fresh == [True, True, False, False]
    assert len(harness.inbox.rows) == 2
    assert {c[0] for c in harness.inbox.calls} == {"whatsapp"}


async def test_statuses_go_to_the_callback(harness: Harness) -> None:
    body = webhook_body(
        statuses=[status("wamid.A", "delivered"), status("wamid.B", "failed", 131047)]
    )
    assert (await harness.post(body))[0] == 200
    assert harness.statuses == [
        ("wamid.A", "delivered", None),
        ("wamid.B", "failed", "131047: Re-engagement message"),
    ]
    assert harness.inbox.calls == []


# ------------------------------------------------------------------ payload → Inbound


@pytest.mark.parametrize(
    ("text", "command", "args"),
    [
        ("lapor", "lapor", ""),
        ("/lapor", "lapor", ""),
        ("Lapor  jalan rusak", "lapor", "jalan rusak"),
        ("status PLU-2611-0042", "status", "PLU-2611-0042"),
        ("/STATUS   PLU-2611-0042 ", "status", "PLU-2611-0042"),
    ],
)
async def test_commands_work_with_and_without_slash(
    harness: Harness, text: str, command: str, args: str
) -> None:
    [ev] = await harness.deliver(webhook_body(text_message(text)))
    assert (ev.kind, ev.command, ev.args) == ("command", command, args)


@pytest.mark.parametrize("text", ["halo pak", "laporan saya", "/", "statusnya bagaimana"])
async def test_other_text_is_text(harness: Harness, text: str) -> None:
    [ev] = await harness.deliver(webhook_body(text_message(text)))
    assert (ev.kind, ev.text, ev.command) == ("text", text, None)


def test_parse_command_unit() -> None:
    known = frozenset(COMMANDS)
    assert parse_command("  ", known) is None
    assert parse_command("//lapor", known) is None
    assert parse_command("bantuan\nsaya", known) == ("bantuan", "saya")


async def test_identity_without_user_id_uses_wa_id(harness: Harness) -> None:
    [ev] = await harness.deliver(webhook_body(text_message("halo"), name="Budi"))
    assert ev.channel == "whatsapp"
    assert ev.external_id == WA_ID and ev.chat_id == WA_ID and ev.phone == WA_ID
    assert ev.display_name == "Budi" and ev.chat_type == "private"
    assert harness.inbox.sender_keys == [WA_ID]


async def test_identity_with_user_id_keys_on_bsuid(harness: Harness) -> None:
    [ev] = await harness.deliver(webhook_body(text_message("halo"), user_id=USER_ID))
    assert ev.external_id == USER_ID and ev.chat_id == WA_ID and ev.phone == WA_ID
    assert harness.inbox.sender_keys == [USER_ID]  # same key as the identity: ordered per person


async def test_username_only_user_has_no_phone(harness: Harness) -> None:
    [ev] = await harness.deliver(webhook_body(text_message("halo"), wa_id=None, user_id=USER_ID))
    assert ev.external_id == USER_ID and ev.chat_id == USER_ID and ev.phone is None


async def test_location_button_and_list_replies(harness: Harness) -> None:
    evs = await harness.deliver(
        webhook_body(
            location_message(-0.8917, 119.8707, name="Pasar Inpres"),
            button_reply("cat:jalan"),
            list_reply("kel:7271011001"),
        )
    )
    loc, btn, lst = evs
    assert (loc.kind, loc.lat, loc.lon, loc.text) == ("location", -0.8917, 119.8707, "Pasar Inpres")
    assert (btn.kind, btn.choice) == ("choice", "cat:jalan")
    assert (lst.kind, lst.choice) == ("choice", "kel:7271011001")


async def test_unsupported_types_get_the_steps_hint(harness: Harness) -> None:
    """Stickers, voice notes, documents …: an empty text (the core answers with a hint)."""
    evs = await harness.deliver(
        webhook_body(
            {"type": "sticker", "sticker": {"id": "9", "mime_type": "image/webp"}},
            {"type": "audio", "audio": {"id": "10", "mime_type": "audio/ogg", "voice": True}},
            {"type": "document", "document": {"id": "11", "mime_type": "application/pdf"}},
            {"type": "unsupported", "errors": [{"code": 131051}]},
        )
    )
    assert [(e.kind, e.text, e.external_id) for e in evs] == [("text", "", WA_ID)] * 4


async def test_reactions_and_system_messages_get_no_answer(harness: Harness) -> None:
    reaction = {"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "👍"}}
    system = {"type": "system", "system": {"body": "number changed", "type": "user_changed"}}
    assert await harness.deliver(webhook_body(reaction, system)) == []


async def test_image_sent_as_document_is_a_photo(harness: Harness) -> None:
    media_id = harness.graph.add_media(jpeg_with_exif(), "image/jpeg")
    doc = {"id": media_id, "mime_type": "image/jpeg", "filename": "x.jpg", "caption": "Got"}
    [ev] = await harness.deliver(webhook_body({"type": "document", "document": doc}))
    assert ev.kind == "photo" and ev.photo is not None and ev.text == "Got"
    assert not Image.open(harness.settings.media_dir / ev.photo.path).getexif()


# ------------------------------------------------------------------ media


def jpeg_with_exif(size: tuple[int, int] = (64, 48), noise: bool = False) -> bytes:
    img = Image.new("RGB", size, (200, 30, 30))
    if noise:
        img = Image.frombytes("RGB", size, random.Random(1).randbytes(size[0] * size[1] * 3))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {2: (0.0, 53.0, 0.0), 1: "S"}  # GPS IFD
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


async def test_image_is_fetched_stripped_and_stored(harness: Harness) -> None:
    raw = jpeg_with_exif()
    assert Image.open(io.BytesIO(raw)).getexif().get(0x010F) == "SecretCam"
    media_id = harness.graph.add_media(raw, "image/jpeg")
    [ev] = await harness.deliver(webhook_body(image_message(media_id, caption="Jalan berlubang")))
    assert ev.kind == "photo" and ev.photo_error is None and ev.text == "Jalan berlubang"
    ref = ev.photo
    assert ref is not None and ref.mime == "image/jpeg" and ref.channel_file_id == media_id
    stored = harness.settings.media_dir / ref.path
    data = stored.read_bytes()
    assert stored.name == f"{ref.sha256}.jpg" and ref.size == len(data)
    assert b"SecretCam" not in data
    with Image.open(stored) as img:
        assert dict(img.getexif()) == {}
        assert img.size == (64, 48)
    # the Graph API calls went to the fake, i.e. graph.facebook.com was rewritten
    assert harness.graph.counters["media_info"] == 1 and harness.graph.counters["downloads"] == 1


async def test_image_too_large_is_refused_before_download(
    make_harness: Callable[..., Any],
) -> None:
    h: Harness = await make_harness(max_photo_bytes=2048)
    big = jpeg_with_exif((200, 200), noise=True)
    assert len(big) > 2048
    media_id = h.graph.add_media(big, "image/jpeg")
    [ev] = await h.deliver(webhook_body(image_message(media_id)))
    assert (ev.kind, ev.photo, ev.photo_error) == ("photo", None, "too_large")
    assert h.graph.counters["downloads"] == 0
    assert not (h.settings.media_dir.exists() and any(h.settings.media_dir.rglob("*.jpg")))


@pytest.mark.parametrize(
    ("data", "mime", "error"),
    [
        (b"%PDF-1.4 not an image", "application/pdf", "bad_type"),
        (b"GIF89a....", "image/gif", "bad_type"),
        (b"this is not a jpeg at all", "image/jpeg", "bad_type"),  # lies about its type
    ],
)
async def test_image_type_is_checked(harness: Harness, data: bytes, mime: str, error: str) -> None:
    media_id = harness.graph.add_media(data, mime)
    [ev] = await harness.deliver(webhook_body(image_message(media_id, mime=mime)))
    assert (ev.photo, ev.photo_error) == (None, error)


async def test_unknown_media_is_a_download_failure(harness: Harness) -> None:
    [ev] = await harness.deliver(webhook_body(image_message("media-gone", caption="x")))
    assert (ev.kind, ev.photo_error, ev.text) == ("photo", "download_failed", "x")


def test_base_url_rewrite_keeps_path_and_query() -> None:
    t = GraphBaseTransport("http://127.0.0.1:9999/graph/")
    import httpx

    url = t.rewrite(httpx.URL("https://graph.facebook.com/v21.0/123/messages?x=1"))
    assert str(url) == "http://127.0.0.1:9999/graph/v21.0/123/messages?x=1"
    other = httpx.URL("https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1")
    assert t.rewrite(other) == other


# ------------------------------------------------------------------ rendering


def random_label(rng: random.Random, max_len: int = 60) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz ABCDEFG0123456789-éüñ🚧🌊ÄØ"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, max_len))).strip() or "x"


def test_cut() -> None:
    assert cut("Jalan", 20) == "Jalan"
    assert cut("a" * 20, 20) == "a" * 20
    assert cut("a" * 21, 20) == "a" * 19 + "…"
    assert cut("Drainase tersumbat parah sekali", 20) == "Drainase tersumbat…"


@pytest.mark.parametrize("seed", range(40))
def test_render_respects_meta_limits_for_random_labels(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 25)
    choices = tuple(
        Choice(
            id=f"c{i}:{random_label(rng, 30)}",
            label=random_label(rng),
            description=random_label(rng, 120) if rng.random() < 0.5 else None,
        )
        for i in range(n)
    )
    text = random_label(rng, 2000)
    msg = render_reply(Reply(text=text, choices=choices), outbox_id=seed, more_label="Lainnya")
    validate_message(msg.to_request(to=WA_ID))  # the fake's Meta rules
    inter = msg.body
    assert len(inter["body"]["text"]) <= 1024
    if n <= 3:
        assert inter["type"] == "button"
        got = [b["reply"] for b in inter["action"]["buttons"]]
        assert [g["id"] for g in got] == [c.id for c in choices]
        for g, c in zip(got, choices, strict=True):
            assert len(g["title"]) <= BUTTON_TITLE_MAX
            assert g["title"] == c.label or (g["title"].endswith("…") and len(c.label) > 20)
        return
    assert inter["type"] == "list"
    assert len(inter["action"]["button"]) <= LIST_BUTTON_MAX
    rows = inter["action"]["sections"][0]["rows"]
    assert all(len(r["title"]) <= ROW_TITLE_MAX for r in rows)
    assert all(len(r.get("description", "")) <= ROW_DESCRIPTION_MAX for r in rows)
    if n <= 10:
        assert [r["id"] for r in rows] == [c.id for c in choices]
    else:
        assert [r["id"] for r in rows[:9]] == [c.id for c in choices[:9]]
        assert rows[9] == {"id": more_row_id(seed, 1), "title": "Lainnya"}


def test_render_shapes() -> None:
    assert render_reply(Reply("Halo"), outbox_id=1, more_label="M").to_request(WA_ID) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": WA_ID,
        "type": "text",
        "text": {"body": "Halo", "preview_url": False},
    }
    long = render_reply(Reply("x" * 5000), outbox_id=1, more_label="M")
    assert len(long.body["body"]) == 4096 and long.body["body"].endswith("…")
    loc = render_reply(
        Reply("Kirim lokasi", ask_location=True, choices=(Choice("a", "A"),)),
        outbox_id=1,
        more_label="M",
    )
    assert loc.body["type"] == "location_request_message"
    assert loc.body["action"] == {"name": "send_location"}
    img = render_reply(Reply("c" * 2000), outbox_id=1, more_label="M", image_id="IMG")
    assert img.type == "image" and img.body["id"] == "IMG" and len(img.body["caption"]) == 1024
    hdr = render_reply(Reply("t", choices=(Choice("a", "A"),)), outbox_id=1, more_label="M",
                       image_id="IMG")  # fmt: skip
    assert hdr.body["header"] == {"type": "image", "image": {"id": "IMG"}}


def test_render_refuses_over_long_ids() -> None:
    with pytest.raises(RenderError):
        render_reply(Reply("t", choices=(Choice("x" * 257, "A"),)), outbox_id=1, more_label="M")
    with pytest.raises(RenderError):
        choices = tuple(Choice(f"{i}" + "y" * 200, "A") for i in range(5))
        render_reply(Reply("t", choices=choices), outbox_id=1, more_label="M")


def test_more_row_id_roundtrip() -> None:
    assert parse_more_row_id(more_row_id(123, 4)) == (123, 4)
    assert parse_more_row_id("cat:jalan") is None
    assert parse_more_row_id("wa.more:1:x") is None


def test_fake_rejects_what_render_would_prevent() -> None:
    msg = render_reply(Reply("t", choices=(Choice("a", "A" * 40),)), outbox_id=1, more_label="M")
    body = msg.to_request(WA_ID)
    body["interactive"]["action"]["buttons"][0]["reply"]["title"] = "A" * 40
    with pytest.raises(_Invalid):
        validate_message(body)


# ------------------------------------------------------------------ sending


async def test_limits_come_from_settings(harness: Harness) -> None:
    channel: Channel = harness.channel  # mypy checks the protocol
    transport: Transport = channel.transport
    assert channel.name == transport.channel == "whatsapp"
    # WHATSAPP_RATE less a margin for arrival jitter at Meta's side (see RATE_MARGIN)
    assert harness.channel.transport.limits == RateLimits(80.0 * RATE_MARGIN, 0)
    assert harness.channel.transport.channel == "whatsapp"


async def test_send_text_and_buttons(harness: Harness) -> None:
    t = harness.channel.transport
    r1 = await t.send(out(harness, Reply("Halo")))
    assert r1.status == "sent" and r1.message_id == harness.graph.sent[0].wamid
    r2 = await t.send(
        out(harness, Reply("Pilih", choices=(Choice("y", "Ya"), Choice("n", "Tidak"))))
    )
    assert r2.status == "sent"
    sent = harness.graph.sent[1]
    assert sent.type == "interactive" and sent.content["type"] == "button"
    assert sent.phone_id == "PHONE1" and sent.to == WA_ID


async def test_send_to_username_only_user_uses_recipient(harness: Harness) -> None:
    r = await harness.channel.transport.send(out(harness, Reply("Halo"), address=USER_ID))
    assert r.status == "sent"
    assert harness.graph.sent[0].recipient == USER_ID and harness.graph.sent[0].to is None


async def test_paging_a_15_item_list(harness: Harness) -> None:
    choices = tuple(Choice(f"kel:{i}", f"Kelurahan nomor {i:02d}") for i in range(15))
    original = Reply("Pilih kelurahan Anda", choices=choices)
    r = await harness.channel.transport.send(out(harness, original, outbox_id=7))
    assert r.status == "sent"
    rows = harness.graph.sent[0].content["action"]["sections"][0]["rows"]
    assert [row["id"] for row in rows[:9]] == [f"kel:{i}" for i in range(9)]
    assert rows[9] == {"id": more_row_id(7, 1), "title": "Lainnya"}
    assert harness.graph.sent[0].content["action"]["button"] == "Pilih"

    # the person picks "Lainnya": it reaches the core as its paging choice (handlers/paging)
    [ev] = await harness.deliver(webhook_body(list_reply(rows[9]["id"]), user_id=USER_ID))
    assert (ev.kind, ev.choice) == ("choice", "more:7:1")

    # the core answers with the same reply at page 1: the adapter shows the rest
    page2 = Reply(original.text, choices=choices, page=1)
    r2 = await harness.channel.transport.send(out(harness, page2, outbox_id=8))
    assert r2.status == "sent"
    rows2 = harness.graph.sent[1].content["action"]["sections"][0]["rows"]
    assert [row["id"] for row in rows2] == [f"kel:{i}" for i in range(9, 15)]

    # a real pick on page 2 reaches the core as a normal choice
    [ev] = await harness.deliver(webhook_body(list_reply("kel:12")))
    assert (ev.kind, ev.choice) == ("choice", "kel:12")


async def test_paging_a_25_item_list_pages_twice(harness: Harness) -> None:
    choices = tuple(Choice(f"o{i}", f"Opsi {i}") for i in range(25))
    await harness.channel.transport.send(out(harness, Reply("Pilih", choices, page=1), outbox_id=8))
    rows = harness.graph.sent[0].content["action"]["sections"][0]["rows"]
    assert [row["id"] for row in rows[:9]] == [f"o{i}" for i in range(9, 18)]
    assert rows[-1]["id"] == more_row_id(8, 2) and len(rows) == 10
    [ev] = await harness.deliver(webhook_body(list_reply(rows[-1]["id"])))
    assert ev.choice == "more:8:2"
    await harness.channel.transport.send(out(harness, Reply("Pilih", choices, page=2), outbox_id=9))
    rows = harness.graph.sent[1].content["action"]["sections"][0]["rows"]
    assert [row["id"] for row in rows] == [f"o{i}" for i in range(18, 25)]


async def test_more_label_follows_language(harness: Harness) -> None:
    choices = tuple(Choice(f"o{i}", f"Opsi {i}") for i in range(12))
    await harness.channel.transport.send(
        out(harness, Reply("Choose", choices=choices), meta={"lang": "en"})
    )
    rows = harness.graph.sent[0].content["action"]["sections"][0]["rows"]
    assert rows[-1]["title"] == "More"


async def test_131047_falls_back_to_the_status_template_once(harness: Harness) -> None:
    harness.graph.fail(WA_ID, 131047)
    r = await harness.channel.transport.send(out(harness, Reply("Laporan PLU-1 selesai"), "status"))
    assert r.status == "sent" and r.meta["template"] == "status_laporan"
    [tpl] = harness.graph.sent
    assert tpl.type == "template"
    assert tpl.content["name"] == "status_laporan"
    assert tpl.content["language"] == {"code": "id"}
    params = tpl.content["components"][0]["parameters"]
    assert params == [{"type": "text", "text": "Laporan PLU-1 selesai"}]
    assert harness.graph.counters["error_131047"] == 1


async def test_131047_for_a_plain_reply_fails(harness: Harness) -> None:
    harness.graph.fail(WA_ID, 131047)
    r = await harness.channel.transport.send(out(harness, Reply("Halo")))
    assert r.status == "failed" and "131047" in (r.error or "")
    assert harness.graph.sent == []


async def test_template_that_also_fails_is_not_retried_in_a_loop(harness: Harness) -> None:
    harness.graph.fail(WA_ID, 131047)
    harness.graph.fail(WA_ID, 131026)
    r = await harness.channel.transport.send(out(harness, Reply("Awas banjir"), "warning"))
    assert r.status == "blocked"
    assert harness.graph.counters["requests"] == 2


@pytest.mark.parametrize(
    ("age", "kind", "expect_type", "expect_status"),
    [
        (timedelta(hours=1), "status", "text", "sent"),
        (timedelta(hours=25), "status", "template", "sent"),
        (timedelta(hours=25), "warning", "template", "sent"),
        (timedelta(hours=25), "announcement", "template", "sent"),
        (None, "warning", "template", "sent"),  # never wrote to us
        (None, "status", "template", "sent"),
        (timedelta(hours=25), "officer", "template", "sent"),  # a new-report card
        (timedelta(hours=25), "admin_alert", "template", "sent"),  # a sensor notice
        (timedelta(hours=25), "reply", None, "failed"),
    ],
)
async def test_24h_window(
    harness: Harness,
    age: timedelta | None,
    kind: str,
    expect_type: str | None,
    expect_status: str,
) -> None:
    if age is not None:
        harness.last_inbound[5] = datetime.now(UTC) - age
    r = await harness.channel.transport.send(out(harness, Reply("Info"), kind, identity_id=5))
    assert r.status == expect_status
    assert harness.graph.counters["error_131047"] == 0  # no free-form attempt outside
    if expect_type is None:
        assert harness.graph.counters["requests"] == 0
    else:
        [sent] = harness.graph.sent
        assert sent.type == expect_type
        if expect_type == "template":
            expected = "status_laporan" if kind in ("status", "officer") else "peringatan_dini"
            assert sent.content["name"] == expected
    if expect_status == "failed":
        assert r.error == WINDOW_CLOSED  # what /healthz counts


CARD = (
    "🆕 Laporan baru PLU-2612-0007\n"
    "Kategori: Jalan rusak\n\n"
    "Lokasi:\tBesusu Barat,     Palu Timur\n"
    "Jalan berlubang sedalam 30 cm oleh Dinas PUPR.\n"
    "Catatan: " + "sudah dua minggu " * 80
)


@pytest.mark.parametrize(
    ("kind", "template"),
    [
        ("status", "status_laporan"),
        ("officer", "status_laporan"),
        ("warning", "peringatan_dini"),
        ("announcement", "peringatan_dini"),
        ("admin_alert", "peringatan_dini"),
    ],
)
async def test_a_multi_line_text_goes_as_one_valid_template_parameter(
    harness: Harness, kind: str, template: str
) -> None:
    """Meta refuses a parameter with a new-line, a tab or more than 4 spaces (132018) and a
    body over 1024 characters (132005); the fake Graph API refuses them the same way."""
    harness.last_inbound[5] = datetime.now(UTC) - timedelta(hours=30)
    r = await harness.channel.transport.send(out(harness, Reply(CARD), kind, identity_id=5))
    assert r.status == "sent", r.error
    [sent] = harness.graph.sent
    assert sent.type == "template" and sent.content["name"] == template
    [param] = sent.content["components"][0]["parameters"]
    text = param["text"]
    assert "\n" not in text and "\t" not in text and "  " not in text
    assert len(text) == TEMPLATE_PARAM_MAX and text.endswith("…")
    assert text.startswith(
        "🆕 Laporan baru PLU-2612-0007 · Kategori: Jalan rusak · Lokasi: Besusu Barat, Palu "
        "Timur · Jalan berlubang sedalam 30 cm oleh Dinas PUPR. Catatan: sudah dua minggu"
    )
    assert harness.graph.rejected == []


@pytest.mark.parametrize("seed", range(20))
def test_template_parameters_of_random_texts_are_valid(seed: int) -> None:
    rng = random.Random(seed)
    pieces = ["kata", "\n", "\t", " ", "     ", "\r\n", "\u00a0", "\u2028", ".", "é", "🌊"]
    text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 600)))
    param = template_parameter(text)
    assert len(param) <= TEMPLATE_PARAM_MAX
    assert param == param.strip() and "  " not in param
    assert not any(c in param for c in "\n\r\t\u00a0\u2028")
    words = [w for w in text.split() if w]
    if words:
        assert param.startswith(words[0][: TEMPLATE_PARAM_MAX - 1])
        message = {"messaging_product": "whatsapp", "to": WA_ID}
        validate_message({**message, **render_template("peringatan_dini", "id", text).to_request()})
    else:
        assert param == ""
        with pytest.raises(RenderError):
            render_template("status_laporan", "id", text)


async def test_a_row_marked_as_template_never_goes_free_form(harness: Harness) -> None:
    """The copy queued after Meta reported 131047 for a free-form message goes as the
    template even though the window looks open from here."""
    harness.last_inbound[5] = datetime.now(UTC) - timedelta(minutes=5)
    msg = out(harness, Reply("Laporan PLU-1 selesai"), "status", identity_id=5)
    r = await harness.channel.transport.send(replace(msg, meta={"as_template": True}))
    assert r.status == "sent" and harness.graph.sent[0].type == "template"


async def test_naive_last_inbound_is_taken_as_utc(harness: Harness) -> None:
    harness.last_inbound[5] = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=2)
    r = await harness.channel.transport.send(out(harness, Reply("Info"), "status", identity_id=5))
    assert r.status == "sent" and harness.graph.sent[0].type == "text"


@pytest.mark.parametrize(
    ("code", "status", "pause"),
    [
        (131056, "retry", False),
        (130429, "retry", True),
        (80007, "retry", True),
        (500, "retry", False),
        (131026, "blocked", False),
        (131051, "failed", False),
    ],
)
async def test_error_mapping(harness: Harness, code: int, status: str, pause: bool) -> None:
    harness.graph.fail(WA_ID, code)
    r = await harness.channel.transport.send(out(harness, Reply("Halo")))
    assert (r.status, r.pause_channel) == (status, pause)
    if status == "retry" and code != 500:
        assert r.retry_after is not None and r.retry_after > 0
    assert r.message_id is None and r.error


async def test_pair_rate_limit_only_affects_that_recipient(harness: Harness) -> None:
    harness.graph.fail(WA_ID, 131056)
    t = harness.channel.transport
    r = await t.send(out(harness, Reply("a")))
    assert r.status == "retry" and not r.pause_channel
    assert (await t.send(out(harness, Reply("b"), address="6280000000"))).status == "sent"


async def test_throughput_limit_pauses_the_channel(harness: Harness) -> None:
    harness.graph.throughput = 2
    t = harness.channel.transport
    results = [await t.send(out(harness, Reply(f"m{i}"))) for i in range(3)]
    assert [r.status for r in results] == ["sent", "sent", "retry"]
    assert results[2].pause_channel and results[2].retry_after == 1.0  # Retry-After header


async def test_unreachable_api_is_a_retry(tmp_path: Path) -> None:
    async with FakeGraphAPI(token=TOKEN) as g:
        dead = g.base_url
    settings = make_settings(tmp_path, dead)
    ch = WhatsAppChannel(settings, FakeI18n(), lambda *a: None, COMMANDS)
    try:
        msg = OutboundMessage(1, "whatsapp", WA_ID, Reply("x"), "reply", None, {})
        r = await ch.transport.send(msg)
        assert r.status == "retry" and not r.pause_channel
    finally:
        await ch.stop()


async def test_wrong_token_pauses_instead_of_failing_everything(
    make_harness: Callable[..., Any],
) -> None:
    h: Harness = await make_harness(whatsapp_token="wrong")
    r = await h.channel.transport.send(out(h, Reply("x")))
    assert r.status == "retry" and r.pause_channel and h.graph.sent == []


async def test_photo_reply_is_uploaded_once_and_sent_with_caption(harness: Harness) -> None:
    ref = MediaStore(harness.settings.media_dir, 10**6).store_image(jpeg_with_exif())
    reply = Reply("Foto laporan " + "x" * 1500, photo=ref)
    t = harness.channel.transport
    assert (await t.send(out(harness, reply))).status == "sent"
    assert (await t.send(out(harness, reply))).status == "sent"
    assert harness.graph.counters["uploads"] == 1
    first, second = harness.graph.sent
    assert first.type == "image" and len(first.content["caption"]) == 1024
    assert first.content["id"] == second.content["id"]
    uploaded = harness.graph.media[first.content["id"]]
    assert uploaded.data == (harness.settings.media_dir / ref.path).read_bytes()


async def test_location_request_is_sent(harness: Harness) -> None:
    r = await harness.channel.transport.send(
        out(harness, Reply("Bagikan lokasi", ask_location=True))
    )
    assert r.status == "sent"
    assert harness.graph.sent[0].content["type"] == "location_request_message"


async def test_render_error_is_a_permanent_failure(harness: Harness) -> None:
    bad = Reply("t", choices=(Choice("x" * 300, "A"),))
    r = await harness.channel.transport.send(out(harness, bad))
    assert r.status == "failed" and r.error and r.error.startswith("render")
    assert harness.graph.counters["requests"] == 0
