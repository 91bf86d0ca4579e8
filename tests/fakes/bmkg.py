"""A fake BMKG open-data server (aiohttp, 127.0.0.1, free port, runs in the test's loop).

Paths mirror the real ones:
    /DataMKG/TEWS/autogempa.json, /DataMKG/TEWS/gempaterkini.json,
    /DataMKG/TEWS/gempadirasakan.json, /alerts/nowcast/id/rss.xml,
    /alerts/nowcast/id/<name>_alert.xml
Default content is the real samples in shared/data/bmkg.  The RSS links are rewritten to
point at this server, so a client can follow them to the CAP files.

    async with FakeBmkg() as bmkg:
        url = bmkg.url("autogempa.json")
        bmkg.publish_quake(Magnitude="6.1", Coordinates="-0.70,119.80", ...)
        bmkg.fail_next(2, "500")        # or "garbage", "slow", "split" (two TCP pieces)
        assert bmkg.max_requests_in(60.0) <= 60
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections import deque
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from tests.conftest import shared_data_dir

Failure = Literal["500", "garbage", "slow", "split"]
REAL_BASE = "https://www.bmkg.go.id"
TEWS = "/DataMKG/TEWS/"
NOWCAST = "/alerts/nowcast/id/"
SAMPLE_CAP = "CBT20260216004_alert.xml"


class FakeBmkg:
    def __init__(self, data_dir: Path | None = None, slow_seconds: float = 5.0) -> None:
        bmkg = (data_dir or shared_data_dir()) / "bmkg"
        self.json: dict[str, bytes] = {
            name: (bmkg / f"{name.removesuffix('.json')}.sample.json").read_bytes()
            for name in ("autogempa.json", "gempaterkini.json", "gempadirasakan.json")
        }
        self.rss: bytes = (bmkg / "nowcast_rss_id.sample.xml").read_bytes()
        self.caps: dict[str, bytes] = {
            SAMPLE_CAP: (bmkg / "nowcast_cap_CBT20260216004.sample.xml").read_bytes()
        }
        self.slow_seconds = slow_seconds
        self.requests: list[tuple[float, str]] = []  # (monotonic time, path)
        self._failures: deque[Failure] = deque()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- control ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        """URL of a JSON file (``autogempa.json``), ``rss.xml`` or a CAP file name."""
        if name.endswith(".json"):
            return f"{self.base_url}{TEWS}{name}"
        return f"{self.base_url}{NOWCAST}{name}"

    def set_payload(self, name: str, payload: bytes | dict[str, Any]) -> None:
        """Replace what a JSON file returns (bytes are served as they are)."""
        self.json[name] = payload if isinstance(payload, bytes) else json.dumps(payload).encode()

    def publish_quake(self, **fields: Any) -> dict[str, Any]:
        """Make `fields` (BMKG keys, e.g. ``Magnitude="6.1"``) the current autogempa quake,
        starting from the current one; returns the new quake object."""
        doc = json.loads(self.json["autogempa.json"])
        gempa = copy.deepcopy(doc["Infogempa"]["gempa"])
        gempa.update(fields)
        doc["Infogempa"]["gempa"] = gempa
        self.set_payload("autogempa.json", doc)
        return gempa

    def fail_next(self, count: int = 1, mode: Failure = "500") -> None:
        """The next `count` requests fail: HTTP 500, 200 with garbage, or a slow answer; or
        ("split") answer right, in two pieces with a pause between (a slow link)."""
        self._failures.extend([mode] * count)

    def count(self, path_suffix: str = "") -> int:
        return sum(1 for _, p in self.requests if p.endswith(path_suffix))

    def max_requests_in(self, window_s: float = 60.0) -> int:
        """The most requests seen in any half-open window of `window_s` seconds."""
        times = sorted(t for t, _ in self.requests)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= window_s:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    # --- server ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((time.monotonic(), request.path))
        mode = self._failures.popleft() if self._failures else None
        if mode == "500":
            return web.Response(status=500, text="Internal Server Error")
        if mode == "garbage":
            return web.Response(body=b"<html>{not json", content_type="application/json")
        if mode == "slow":
            await asyncio.sleep(self.slow_seconds)
        answer = self._answer(request.path)
        if mode != "split" or not isinstance(answer.body, bytes):
            return answer
        body = answer.body
        resp = web.StreamResponse(headers={"Content-Type": answer.content_type})
        resp.content_length = len(body)
        await resp.prepare(request)
        await resp.write(body[: len(body) // 2])
        await asyncio.sleep(0.3)
        await resp.write(body[len(body) // 2 :])
        await resp.write_eof()
        return resp

    def _answer(self, path: str) -> web.Response:
        if path.startswith(TEWS):
            body = self.json.get(path.removeprefix(TEWS))
            if body is not None:
                return web.Response(body=body, content_type="application/json")
        elif path == f"{NOWCAST}rss.xml":
            body = self.rss.replace(REAL_BASE.encode(), self.base_url.encode())
            return web.Response(body=body, content_type="application/rss+xml")
        elif path.startswith(NOWCAST):
            body = self.caps.get(path.removeprefix(NOWCAST))
            if body is not None:
                return web.Response(body=body, content_type="application/xml")
        return web.Response(status=404, text="not found")

    async def start(self) -> FakeBmkg:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBmkg:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
