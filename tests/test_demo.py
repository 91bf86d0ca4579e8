"""The demo chat without a token: `lapor run` with no Telegram/WhatsApp settings starts the web
channel; a newcomer files a report (category, text, a point, a photo upload) through the same
core and outbox as the other channels; personas; health and metrics of the running process."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import select
from yarl import URL

from bot.city import load_city
from storage.db import Database
from storage.models import Photo, Report, Staff
from tests.e2e import web_only_env
from tests.fakes.procs import BotProcess
from tests.test_open311 import jpeg_bytes

pytestmark = pytest.mark.e2e
CODE_RE = re.compile(r"\b(PLU-\d{4}-\d{4,5})\b")


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    url = f"sqlite:///{tmp_path / 'lapor.db'}"
    env = web_only_env(url, tmp_path)
    port = env["HTTP_PORT"]
    proc = BotProcess(env, log_path=tmp_path / "bot.log")
    with proc:
        await proc.wait_ready_async(30)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            yield {"http": http, "proc": proc, "url": url}


class Chat:
    def __init__(self, http: aiohttp.ClientSession, sid: str, persona: str = "citizen") -> None:
        self.http = http
        self.sid = sid
        self.persona = persona
        self.after = 0

    async def post(self, body: dict[str, Any]) -> None:
        payload = {"sid": self.sid, "persona": self.persona, "id": uuid.uuid4().hex, **body}
        async with self.http.post("/demo/api/send", json=payload) as resp:
            assert resp.status == 200, await resp.text()

    async def photo(self, data: bytes) -> None:
        form = aiohttp.FormData()
        form.add_field("sid", self.sid)
        form.add_field("persona", self.persona)
        form.add_field("id", uuid.uuid4().hex)
        form.add_field("photo", data, filename="p.jpg", content_type="image/jpeg")
        async with self.http.post("/demo/api/photo", data=form) as resp:
            assert resp.status == 200, await resp.text()

    async def replies(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait for the next replies (the outbox sender delivers them to the web mailbox)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            params = {"sid": self.sid, "persona": self.persona, "after": str(self.after)}
            async with self.http.get("/demo/api/messages", params=params) as resp:
                assert resp.status == 200
                msgs = (await resp.json())["messages"]
            if msgs:
                self.after = msgs[-1]["id"]
                await asyncio.sleep(0.3)  # let the rest of a burst arrive
                params["after"] = str(self.after)
                async with self.http.get("/demo/api/messages", params=params) as resp:
                    more = (await resp.json())["messages"]
                if more:
                    self.after = more[-1]["id"]
                return msgs + more
            if loop.time() > end:
                raise AssertionError("no reply from the demo chat")
            await asyncio.sleep(0.1)


async def test_newcomer_files_a_report_with_photo_and_point(demo: dict[str, Any]) -> None:
    http: aiohttp.ClientSession = demo["http"]
    async with http.get("/demo") as resp:
        page = await resp.text()
        assert resp.status == 200 and "Obrolan demo" in page and 'lang="id"' in page
    async with http.post("/demo/api/session") as resp:
        sid = (await resp.json())["sid"]
    async with http.post("/demo/api/persona", json={"sid": sid, "persona": "citizen"}) as resp:
        assert resp.status == 200
    chat = Chat(http, sid)
    city = load_city("palu")
    kel = city.kelurahan[5]
    await chat.post({"kind": "text", "text": "/lapor"})
    photo_sent = False
    code = None
    for _step in range(14):
        msgs = await chat.replies()
        last = msgs[-1]
        ids = [c["id"] for m in msgs for c in m["choices"]]
        found = [CODE_RE.search(m["text"]) for m in msgs]
        if any(found):
            code = next(f.group(1) for f in found if f)
            break
        if any(i.startswith("cat:") for i in ids) and "cat:jalan_rusak" in ids:
            await chat.post({"kind": "choice", "choice": "cat:jalan_rusak"})
        elif last["ask_location"]:
            await chat.post({"kind": "location", "lat": kel.centroid[0], "lon": kel.centroid[1]})
        elif "ph:done" in ids and not photo_sent:
            await chat.photo(jpeg_bytes())
            photo_sent = True
        elif "ph:done" in ids:
            await chat.post({"kind": "choice", "choice": "ph:done"})
        elif "rv:send" in ids:
            await chat.post({"kind": "choice", "choice": "rv:send"})
        elif not last["choices"]:
            await chat.post({"kind": "text", "text": "Jalan berlubang besar di depan sekolah"})
        else:  # any other question (e.g. a similar report nearby): go on with a new one
            await chat.post({"kind": "choice", "choice": last["choices"][-1]["id"]})
    assert code is not None, "the report was not confirmed"
    db = Database(demo["url"])
    try:
        with db.session() as s:
            report = s.exec(select(Report).where(Report.code == code)).one()
            assert report.channel == "web" and report.category == "jalan_rusak"
            assert report.kode_kel == kel.code
            photos = list(s.exec(select(Photo).where(Photo.report_id == report.id)))
            assert len(photos) == 1 and photos[0].mime == "image/jpeg"
    finally:
        db.dispose()
    # the report is public at once, with the uploaded photo
    async with http.get(f"/open311/v2/requests/{code}.json") as resp:
        (shown,) = await resp.json()
    assert shown["status"] == "open" and shown["media_url"]
    async with http.get(URL(shown["media_url"]).path) as resp:
        assert resp.status == 200 and (await resp.read())[:2] == b"\xff\xd8"

    # the same running process reports on itself
    async with http.get("/healthz") as resp:
        health = await resp.json()
    assert health["ok"] and health["channels"] == {"web": "up"}
    async with http.get("/metrics") as resp:
        metrics = await resp.text()
    inbound = re.search(r'lapor_inbound_events_total\{channel="web"\} (\d+)', metrics)
    assert inbound and int(inbound.group(1)) >= 6
    assert re.search(r'lapor_reports\{status="baru"\} 1\.0', metrics)
    sent = re.search(r'lapor_outbox_sent_total\{channel="web"\} (\d+)', metrics)
    assert sent and int(sent.group(1)) >= 6
    assert "lapor_outbox_depth" in metrics and "lapor_sla_breaches 0.0" in metrics


async def test_personas_are_separate_identities_and_staff_only_for_officers(
    demo: dict[str, Any],
) -> None:
    http: aiohttp.ClientSession = demo["http"]
    async with http.post("/demo/api/session") as resp:
        sid = (await resp.json())["sid"]
    for persona in ("citizen", "officer-PUPR", "admin"):
        async with http.post("/demo/api/persona", json={"sid": sid, "persona": persona}) as resp:
            assert resp.status == 200
    async with http.post("/demo/api/persona", json={"sid": sid, "persona": "officer-NOPE"}) as r:
        assert r.status == 400
    async with http.post("/demo/api/persona", json={"sid": "../x", "persona": "admin"}) as r:
        assert r.status == 400
    officer = Chat(http, sid, "officer-PUPR")
    await officer.post({"kind": "text", "text": "/start"})
    assert await officer.replies()
    async with http.get(
        "/demo/api/messages", params={"sid": sid, "persona": "citizen", "after": "0"}
    ) as resp:
        assert (await resp.json())["messages"] == []  # the officer's replies are not hers
    db = Database(demo["url"])
    try:
        with db.session() as s:
            staff = {(st.role, st.opd) for st in s.exec(select(Staff))}
    finally:
        db.dispose()
    assert staff == {("officer", "PUPR"), ("admin", None)}


async def test_bad_demo_input_is_400(demo: dict[str, Any]) -> None:
    http: aiohttp.ClientSession = demo["http"]
    async with http.post("/demo/api/session") as resp:
        sid = (await resp.json())["sid"]
    bad = [
        {"sid": sid, "persona": "citizen", "id": "short", "kind": "text", "text": "x"},
        {"sid": sid, "persona": "citizen", "id": uuid.uuid4().hex, "kind": "sticker"},
        {"sid": sid, "persona": "citizen", "id": uuid.uuid4().hex, "kind": "location", "lat": "x"},
    ]
    for body in bad:
        async with http.post("/demo/api/send", json=body) as resp:
            assert resp.status == 400, body
    async with http.post(
        "/demo/api/send", data=b"{nope", headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 400


async def test_beside_real_channels_the_demo_has_no_staff_powers(tmp_path: Path) -> None:
    """DEMO_ENABLED=true next to a real Telegram bot: a web visitor is a citizen only. Officer
    and admin personas are not offered and refused (no report details, no rejecting, no
    broadcasting to real subscribers), and staff roles an earlier demo-only run gave its
    personas end at start."""
    from storage.db import upgrade
    from storage.repo import Repo
    from tests.e2e import bot_env
    from tests.fakes.telegram_api import FakeBotAPI

    url = f"sqlite:///{tmp_path / 'lapor.db'}"
    upgrade(url)
    with Database(url).unit() as uow:  # a demo-only run made an admin persona earlier
        repo = Repo(uow)
        ident, _p, _new = repo.get_or_create_identity(
            "web", "old:admin", "old:admin", language="id"
        )
        repo.set_staff(ident.person_id, "admin", None)
    api = FakeBotAPI().start_in_thread()
    try:
        env = bot_env(api, url, tmp_path, DEMO_ENABLED="true", LOG_LEVEL="WARNING")
        with BotProcess(env, log_path=tmp_path / "bot.log") as proc:
            await proc.wait_ready_async(30)
            base = f"http://127.0.0.1:{env['HTTP_PORT']}"
            async with aiohttp.ClientSession(base) as http:
                async with http.get("/demo") as resp:
                    page = await resp.text()
                assert resp.status == 200 and "officer-" not in page and '"admin"' not in page
                async with http.post("/demo/api/session") as resp:
                    sid = (await resp.json())["sid"]
                for persona in ("admin", "officer-PUPR"):
                    body = {"sid": sid, "persona": persona}
                    async with http.post("/demo/api/persona", json=body) as resp:
                        assert resp.status == 403
                    send = {**body, "id": uuid.uuid4().hex, "kind": "text", "text": "/siaran"}
                    async with http.post("/demo/api/send", json=send) as resp:
                        assert resp.status == 403
                    params = {"sid": sid, "persona": persona, "after": "0"}
                    async with http.get("/demo/api/messages", params=params) as resp:
                        assert resp.status == 403
                citizen = Chat(http, sid)
                await citizen.post({"kind": "text", "text": "/start"})
                assert await citizen.replies()  # a citizen is still welcome
            with Database(url).session() as s:
                assert list(s.exec(select(Staff))) == []  # the old persona's role ended
    finally:
        api.stop()
