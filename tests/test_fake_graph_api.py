"""The fake Graph API behaves like Meta where our adapter depends on it."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fakes.graph_api import (
    USER_ID,
    WA_ID,
    FakeGraphAPI,
    button_reply,
    sign,
    status,
    text_message,
    webhook_body,
)

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphAPI]:
    async with FakeGraphAPI(token=TOKEN) as g:
        yield g


def text(to: str = WA_ID, body: str = "halo") -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}}


def buttons(*titles: str) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": WA_ID,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Pilih"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": f"b{i}", "title": t}}
                    for i, t in enumerate(titles)
                ]
            },
        },
    }


def a_list(n_rows: int, title: str = "Jalan", desc: str | None = None) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [{"id": f"r{i}", "title": title} for i in range(n_rows)]
    if desc is not None:
        for r in rows:
            r["description"] = desc
    return {
        "messaging_product": "whatsapp",
        "to": WA_ID,
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": "Kategori"},
            "action": {"button": "Pilih", "sections": [{"rows": rows}]},
        },
    }


async def post(g: FakeGraphAPI, body: dict[str, Any], headers: dict[str, str] = AUTH):
    async with httpx.AsyncClient() as c:
        return await c.post(f"{g.base_url}/v21.0/PHONE/messages", json=body, headers=headers)


async def test_send_needs_bearer_token(graph: FakeGraphAPI) -> None:
    r = await post(graph, text(), headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert graph.sent == []
    r = await post(graph, text())
    assert r.status_code == 200
    data = r.json()
    assert data["messaging_product"] == "whatsapp"
    assert data["contacts"] == [{"input": WA_ID, "wa_id": WA_ID}]
    assert data["messages"][0]["id"].startswith("wamid.")
    assert [m.content["body"] for m in graph.sent] == ["halo"]


async def test_bsuid_recipient_is_echoed_as_user_id(graph: FakeGraphAPI) -> None:
    body = text()
    del body["to"]
    body["recipient"] = USER_ID
    r = await post(graph, body)
    assert r.json()["contacts"] == [{"input": USER_ID, "user_id": USER_ID}]
    assert graph.sent_to(USER_ID)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (buttons("a" * 21), 131009),
        (buttons("a", "b", "c", "d"), 131009),
        (a_list(11), 131009),
        (a_list(3, title="x" * 25), 131009),
        (a_list(3, desc="d" * 73), 131009),
        (text(body="x" * 4097), 131009),
        ({"messaging_product": "whatsapp", "to": WA_ID, "type": "sticker", "sticker": {}}, 131051),
        ({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}, 100),
    ],
)
async def test_meta_limits_are_enforced(graph: FakeGraphAPI, body: dict, code: int) -> None:
    r = await post(graph, body)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == code and err["type"] == "OAuthException" and "fbtrace_id" in err
    assert graph.sent == []


async def test_limits_at_the_edge_are_accepted(graph: FakeGraphAPI) -> None:
    assert (await post(graph, buttons("a" * 20, "b", "c"))).status_code == 200
    assert (await post(graph, a_list(10, title="t" * 24, desc="d" * 72))).status_code == 200


async def test_programmed_errors_per_recipient(graph: FakeGraphAPI) -> None:
    graph.fail(WA_ID, 131047)
    graph.fail(WA_ID, 500)
    r1 = await post(graph, text())
    assert (r1.status_code, r1.json()["error"]["code"]) == (400, 131047)
    r2 = await post(graph, text())
    assert r2.status_code == 500
    assert (await post(graph, text())).status_code == 200  # queue used up
    assert (await post(graph, text(to="6289999"))).status_code == 200  # others unaffected
    assert graph.counters["error_131047"] == 1 and graph.counters["messages"] == 2


def template(name: str = "status_laporan", *params: str) -> dict[str, Any]:
    body = {"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}
    return {
        "messaging_product": "whatsapp",
        "to": WA_ID,
        "type": "template",
        "template": {"name": name, "language": {"code": "id"}, "components": [body]},
    }


async def test_template_passes_the_window_error(graph: FakeGraphAPI) -> None:
    graph.fail_always(WA_ID, 131047)
    tpl = template("status_laporan", "Laporan PLU-2612-0001 selesai.")
    assert (await post(graph, text())).status_code == 400
    r = await post(graph, tpl)
    assert r.status_code == 200
    assert r.json()["messages"][0]["message_status"] == "accepted"


@pytest.mark.parametrize(
    ("tpl", "code"),
    [
        (template("status_laporan", "Selesai.\nCatatan: sudah diperbaiki"), 132018),
        (template("status_laporan", "kolom\tdua"), 132018),
        (template("status_laporan", "lima     spasi"), 132018),
        (template("status_laporan", "x" * 1000), 132005),  # 1024 with the template's words
        (template("status_laporan"), 132000),
        (template("status_laporan", "a", "b"), 132000),
        (template("status_laporan", "  "), 132000),
        (template("tidak_ada", "x"), 132001),
    ],
)
async def test_template_parameters_are_checked_like_meta(
    graph: FakeGraphAPI, tpl: dict[str, Any], code: int
) -> None:
    r = await post(graph, tpl)
    assert r.status_code in (400, 404) and r.json()["error"]["code"] == code
    assert graph.sent == []
    ok = await post(graph, template("peringatan_dini", "Banjir. Siaga 2 · empat    spasi boleh"))
    assert ok.status_code == 200


async def test_throughput_limit_answers_130429() -> None:
    async with FakeGraphAPI(token=TOKEN, throughput=3) as g:
        codes = [(await post(g, text())).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    assert g.counters["error_130429"] == 2


async def test_media_info_download_and_upload(graph: FakeGraphAPI) -> None:
    media_id = graph.add_media(b"\xff\xd8jpegdata", "image/jpeg")
    async with httpx.AsyncClient() as c:
        assert (await c.get(f"{graph.base_url}/v21.0/{media_id}")).status_code == 401
        info = (await c.get(f"{graph.base_url}/v21.0/{media_id}", headers=AUTH)).json()
        assert info["mime_type"] == "image/jpeg" and info["file_size"] == 10
        assert info["sha256"] == hashlib.sha256(b"\xff\xd8jpegdata").hexdigest()
        assert info["url"].startswith(graph.base_url)
        assert (await c.get(info["url"])).status_code == 401
        got = await c.get(info["url"], headers=AUTH)
        assert got.content == b"\xff\xd8jpegdata"
        up = await c.post(
            f"{graph.base_url}/v21.0/PHONE/media",
            headers=AUTH,
            files={"file": ("a.png", b"PNGDATA", "image/png")},
            data={"messaging_product": "whatsapp", "type": "image/png"},
        )
        new_id = up.json()["id"]
    assert graph.media[new_id].data == b"PNGDATA" and graph.media[new_id].mime == "image/png"


def test_in_thread_mode_serves_sync_clients() -> None:
    g = FakeGraphAPI(token=TOKEN).start_in_thread()
    try:
        r = httpx.post(f"{g.base_url}/v21.0/PHONE/messages", json=text(), headers=AUTH)
        assert r.status_code == 200
        assert len(g.sent) == 1
    finally:
        g.stop_thread()
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{g.base_url}/v21.0/PHONE/messages", json=text(), headers=AUTH)


def test_webhook_body_shapes_and_signature() -> None:
    with_uid = webhook_body(text_message("lapor"), user_id=USER_ID)
    value = with_uid["entry"][0]["changes"][0]["value"]
    assert value["contacts"][0] == {"profile": {"name": "Warga Palu"}, "wa_id": WA_ID,
                                    "user_id": USER_ID}  # fmt: skip
    msg = value["messages"][0]
    assert msg["from"] == WA_ID and msg["from_user_id"] == USER_ID and msg["id"].startswith("wamid")
    plain = webhook_body(button_reply("b1"))["entry"][0]["changes"][0]["value"]
    assert "user_id" not in plain["contacts"][0] and "from_user_id" not in plain["messages"][0]
    only = webhook_body(statuses=[status("wamid.X", "failed", 131047)])
    st = only["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert st["errors"][0]["code"] == 131047
    raw = json.dumps(with_uid).encode()
    expected = hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
    assert sign(raw, "s3cret") == f"sha256={expected}"
